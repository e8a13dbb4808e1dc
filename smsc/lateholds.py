"""Re-sends held while the answer to their part's earlier submit may wait unread behind a paused reader.

A submit left unanswered past its response timeout resolves `Outcome.UNANSWERED` with a grace
(`SubmitResult.retry_after`, the link's `late_answer_grace_seconds`), after which the dispatcher sends
the part again. That grace is fixed when the submit resolves and runs on the clock: the time the
connection's reader then stands paused for our own sake (`smsc.stalls.ReadPause`: its deliveries held
at their bound, the rest of an MO flood waiting in TCP) is not taken out of it, although the SMSC's
answer may be waiting in TCP behind that flood. The re-send went out, the answer was read after it,
and the phone had the SMS twice: the late answer only named the duplicate.

So such a submit leaves a `LateHold` for its part: the grace once more, as a timer that does not run
while the reader is paused (`ResponseTimer`), and is credited no more pause than the reader's bound.
A re-send of the part that comes while it runs, by any link, once that reader stood still after the
submit went unanswered, is held by the link it was handed to (`Resends.held`) until the answer is
read, the session ends (no answer can come any more) or the timer runs out. An answer that settles
the part (taken, or refused for good) then answers the re-send as TEMPORARY and unsent, nothing
written, before the late answer itself is handed over (`SubmitResult.late`): the part is back in the
queue when that answer settles it (`gateway.late_answers`). Any other end writes the re-send then.
A reader that never stood still holds nothing: the grace on the clock is the grace it had.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from functools import partial

import structlog

from smsc.base import OutboundSms, Outcome, SubmitResult
from smsc.stalls import ReadPause, ResponseTimer

log = structlog.get_logger(__name__)

# Late answers after which the part must not go again: the SMSC took it, or refused it for good.
SETTLING = frozenset({Outcome.ACCEPTED, Outcome.REJECTED, Outcome.MALFORMED})
ANSWERED_MEANWHILE = "not sent again: the SMSC answered its earlier submit meanwhile"

Resume = Callable[[SubmitResult | None], None]

# Per event loop, each part's hold: a part id names the same SMS on every link of the process.
_HOLDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, LateHold]] = (
    weakref.WeakKeyDictionary()
)


def _holds(loop: asyncio.AbstractEventLoop) -> dict[int, LateHold]:
    holds = _HOLDS.get(loop)
    if holds is None:
        holds = _HOLDS[loop] = {}
    return holds


def holding(part: int) -> bool:
    """Whether a re-send of `part` handed to a link now would be held (`Resends.held`): whether it goes
    out is known only from its answer, and only then may it be said a possible duplicate."""
    try:
        hold = _HOLDS.get(asyncio.get_running_loop(), {}).get(part)
    except RuntimeError:  # no loop running: nothing is held
        return False
    return hold is not None and hold.holding


class LateHold:
    """The grace of one unanswered submit of `part` on a connection whose reader is `pause`; see the
    module docstring. Its connection calls `end` with the late answer, or None when none can come."""

    __slots__ = ("_holds", "_pause", "_since", "_timer", "_waiting", "ended", "part")

    def __init__(self, loop: asyncio.AbstractEventLoop, part: int, grace: float, pause: ReadPause) -> None:
        self.part, self._pause = part, pause
        self._since = pause.total()
        self._waiting: list[Resume] = []
        self.ended = False
        self._holds = _holds(loop)
        self._holds[part] = self
        self._timer = ResponseTimer(loop, grace, partial(self.end, None), pause, ends_session=False)

    @property
    def holding(self) -> bool:
        """Whether a re-send is held now: the reader stood still since the submit went unanswered."""
        pause = self._pause
        return not self.ended and (pause.paused or pause.total() > self._since)

    def wait(self, resume: Resume) -> None:
        self._waiting.append(resume)

    def end(self, answer: SubmitResult | None) -> None:
        """The re-sends may go (`answer` None or not settling) or must not (`SETTLING`); the caller
        hands the late answer over after this, so that a re-send is answered first."""
        if self.ended:
            return
        self.ended = True
        self._timer.cancel()
        if self._holds.get(self.part) is self:
            del self._holds[self.part]
        waiting, self._waiting = self._waiting, []
        for resume in waiting:
            resume(answer)


class Resends:
    """One link's re-sends held by a `LateHold`; those still held when the link stops are answered
    as unsent, nothing written."""

    def __init__(self, link: str) -> None:
        self.link = link
        self._held: set[asyncio.Future[SubmitResult]] = set()
        # The loop's holds, looked up once: every submit asks (`held`), a weak lookup each time.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._holds: dict[int, LateHold] = {}

    def held(
        self, sms: OutboundSms, send: Callable[[OutboundSms], asyncio.Future[SubmitResult]]
    ) -> asyncio.Future[SubmitResult] | None:
        """The future of `sms` held until its part's hold ends, then answered or `send` (the link's
        own, which writes it); None when nothing holds it: the link sends it now."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._holds = loop, _holds(loop)
        hold = self._holds.get(sms.part_id)
        if hold is None or not hold.holding:
            return None
        future: asyncio.Future[SubmitResult] = loop.create_future()
        self._held.add(future)
        future.add_done_callback(self._held.discard)
        why = "the answer to its earlier submit may wait unread behind a paused reader"
        log.info("smsc.resend_held", link=self.link, part=sms.part_id, reason=why)

        def resume(answer: SubmitResult | None) -> None:
            if future.done():  # the link stopped, or the dispatcher gave it up
                return
            if answer is not None and answer.outcome in SETTLING:
                log.info("smsc.resend_dropped", link=self.link, part=sms.part_id, late=answer.outcome.value)
                future.set_result(SubmitResult(Outcome.TEMPORARY, error=ANSWERED_MEANWHILE, unsent=True))
            else:  # written now, out of the step that read the answer (or ended the session)
                loop.call_soon(self._send, sms, send, future)

        hold.wait(resume)
        return future

    @staticmethod
    def _send(
        sms: OutboundSms,
        send: Callable[[OutboundSms], asyncio.Future[SubmitResult]],
        future: asyncio.Future[SubmitResult],
    ) -> None:
        if future.done():
            return
        sent = send(sms)

        def settle(done: asyncio.Future[SubmitResult]) -> None:
            if future.done():
                return
            if done.cancelled():
                future.cancel()
            elif (exc := done.exception()) is not None:
                future.set_exception(exc)
            else:
                future.set_result(done.result())

        sent.add_done_callback(settle)

    def stop(self) -> None:
        """The link stops: what it still holds was never written."""
        for future in list(self._held):
            if not future.done():
                future.set_result(SubmitResult(Outcome.TEMPORARY, error="link stopping", unsent=True))
