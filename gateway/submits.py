"""A claimed part handed to its link: a window place taken, its pacing waited out, the submit, and
the answer handed to the outcome's write (`gateway.outcomes`). `Submits` is the dispatcher's
(`gateway.dispatcher.Dispatcher`), whose state it shares.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial

from gateway.backgroundwrites import BackgroundWrites
from gateway.late_answers import LateAnswers
from gateway.linkchoice import LinkChoice
from gateway.outbound import outbound
from gateway.outcomes import OutcomeRecorder
from gateway.store.db import ClaimedPart
from smsc import lateholds
from smsc.base import Outcome, SmscLink, SubmitResult
from smsc.pacing import LinkPacer


class _Wait:
    """A submit still waiting for its pacing (a throttle pause or a token)."""


_WAIT = _Wait()
_Sending = Awaitable[SubmitResult] | Exception | _Wait | None


class Submits:
    """The submits of `Dispatcher` (its state, declared here)."""

    clock: Callable[[], float]
    links: dict[str, SmscLink]
    pacers: dict[str, LinkPacer]
    choice: LinkChoice
    _tasks: set[asyncio.Task[None]]
    _parts: dict[asyncio.Task[None], ClaimedPart]
    _pacing: set[int]
    _late: LateAnswers
    _outcomes: OutcomeRecorder
    _background: BackgroundWrites
    _fill: Callable[[], None]
    _withhold_stopped: Callable[[], frozenset[int] | set[int]]
    wake: Callable[[], None]
    step_unseen: Callable[[], bool]

    def _start(self, name: str, part: ClaimedPart) -> None:
        """Take a window place for the part and, when pacing allows it now, hand it to the link in
        this step; the answer (or the wait for pacing) is the task's."""
        pacer = self.pacers[name]
        pacer.reserve()
        self.choice.leaving(part, name)
        sending: _Sending = _WAIT
        if pacer.try_ready():
            try:
                sending = self._go(name, part)
            except Exception as exc:  # raised in the task, which puts the part on hold
                sending = exc
        task = asyncio.create_task(self._submit(name, part, sending))
        self._tasks.add(task)
        self._parts[task] = part
        task.add_done_callback(self._submitted)

    def _submitted(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if (part := self._parts.pop(task, None)) is not None:
            self.choice.done(part)

    def _go(self, name: str, part: ClaimedPart) -> Awaitable[SubmitResult] | None:
        """Submit the part (its pacing done); None, its pacing token given back for the next part, when a
        late answer settled it, its account was suspended, or its validity ended while it waited (a window
        of 10 at 0.4/s is 25 s; the SMSC got a validity_period already past: it ends as at the claim)."""
        pacer = self.pacers[name]
        if part.id in self._withhold_stopped():  # held by that look, not sent
            pacer.unready()
            return None
        self._pacing.discard(part.id)
        now = self.clock()
        if part.expires_at <= now:
            pacer.unready()
            if self.step_unseen():  # its validity may move with the step: claimed again after the check
                self._background(self._outcomes.put_back([(part, self.clock())], event=None), "step_unseen")
            else:
                self._background(self._outcomes.settle_unsendable([part], now), "settle_unsendable")
            return None
        if self._late.settled_meanwhile(part.id):
            pacer.unready()
            return None
        if part.id in self._late.unanswered:
            hold = lateholds.holding(part.id)
            read = hold is None and self._late.answer_read(part.id)
            if hold is not None or read:
                # Its earlier submit's answer may still wait unread behind a paused reader, or was
                # read and waits to be written: not handed to a link but put back, due again shortly.
                # Held in a link, it took a window place and went past a STOP, a cancel or a
                # suspension recorded meanwhile (`smsc.lateholds`); sent, it went before the write
                # that settles it (`LateAnswers.answer_read`).
                pacer.unready()
                event: str | None = None
                due = self.clock() + lateholds.RECHECK_SECONDS
                if read:  # its answer's write settles it, before the put-back's or after
                    event = self._late.withheld_once(part.id)
                elif hold is not None:
                    said, hold.said = hold.said, True
                    event = None if said else "mt.resend_held"
                    # Due when the hold ends at the latest, and at once when it ends sooner: due again
                    # each second, it was claimed and put back, two writes a second while it held.
                    due = self.clock() + hold.left()
                    hold.when_ended(partial(self._hold_ended, part.id, due))
                # The later SMS to its phone wait for it from now, not from the put-back's write: the
                # next one in this very fill went first (F5).
                self._outcomes.order.wait_for(part, due)
                back = [(part, due)]
                self._background(self._outcomes.put_back(back, event=event), "resend_held")
                return None
        if (due_after := self._outcomes.order.due_after(part, self._outcomes.store.clock())) is not None:
            # An older SMS to its phone was put back while this one waited for its pacing (F5).
            pacer.unready()
            self._late.not_sent([part.id])
            self._background(self._outcomes.put_back([(part, due_after)]), "put_back")
            return None
        self._late.sending_again(part.id, name)
        return self.links[name].send(outbound(part), self._on_wire(part))

    def _on_wire(self, part: ClaimedPart) -> Callable[[], None] | None:
        """What the link calls once it writes the part's submit (`Dispatcher` records when it went)."""
        return None

    def _hold_ended(self, part_id: int, due: float) -> None:
        """The hold a part was put back for, due at `due`, ended: it is due now, and so are the later
        SMS to its phone put back to go after it (`PhoneOrder`), not when the hold could have ended
        at the latest. Written after that put-back, queued before."""
        queue = self._outcomes.store.queue

        async def write() -> None:
            await self._outcomes.write(part_id, lambda: queue.due_now(part_id, behind_at=due))
            self.wake()

        self._background(write(), "hold_ended")

    async def _submit(self, name: str, part: ClaimedPart, sending: _Sending) -> None:
        pacer = self.pacers[name]
        outcome: Outcome | None = None
        released = False
        try:
            if sending is _WAIT:
                await pacer.ready()
                task = asyncio.current_task()
                part = self._parts.get(task, part) if task is not None else part  # `validities_moved`
                sending = self._go(name, part)
            if isinstance(sending, Exception):
                raise sending
            if sending is None:
                return
            result = await sending
            outcome = result.outcome
            # The SMSC has answered, so its window place is free now rather than a group commit later.
            # The outcome's write (`OutcomeRecorder.record`) is queued in this same step, with no
            # await in between: a claim or a requeue of orphans is a write queued after it, and
            # writes run in order, so nothing that depends on the outcome sees the part before the
            # outcome is durable.
            pacer.release(outcome, unsent=result.unsent)  # learns a throttle at once, for the others too
            self.choice.answered(part, name, result)  # a long SMS a link took a part of stays with it
            released = True
            self._fill()  # the next parts go out now, before anything is written
            await self._outcomes.record(name, part, result, pacer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # held; one past its pacing (`_go`) its link had, and the SMSC may have
            await self._outcomes.hold_on_error(name, part, exc, handed=part.id not in self._pacing)
        finally:
            self._pacing.discard(part.id)
            if not released:
                pacer.release(outcome)
                self._fill()
            if outcome is not None and outcome is not Outcome.ACCEPTED:
                self.wake()  # the part is back in the queue (or settled): claim may find it due
