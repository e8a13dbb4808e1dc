"""When a part is tried again after a send that failed: the back-off, and the parts suspected of
ending the SMSC's sessions.

A part on the wire when its session was lost keeps its turn; one the SMSC may have ended several
sessions on in a row backs off, and then waits on `hold` for a human (`gateway.outcomes` explains
why and when). `LostSessions` counts those sessions for `OutcomeRecorder`, whose state it shares.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable

import structlog

from gateway.late_answers import LateAnswers
from gateway.phoneorder import PhoneOrder
from gateway.store.db import ClaimedPart, Store
from gateway.store.partnotes import LINK_LOST
from smsc.base import SubmitResult
from smsc.pacing import backoff

log = structlog.get_logger(__name__)

RETRY_BASE_SECONDS = 5.0
RETRY_MAX_SECONDS = 900.0
# Sessions lost in a row while a part was the oldest submit on the wire unanswered: from the second
# it is suspected of ending them and backs off (one session lost is any network's bad luck); at the
# fifth it waits for a human: it may have reached the phone each time, and each loss is a reconnect.
SUSPECT_AFTER_LOSSES = 2
HOLD_AFTER_LOSSES = 5
SESSION_KILLER = "the SMSC dropped the session each time this SMS was sent ({} times in a row, link {})"
# Parts whose lost sessions are counted, kept at most: one that expired or was cancelled while it
# waited is forgotten with the oldest.
LOSSES_KEPT = 4096


def retry_delay(attempts: int, base: float = RETRY_BASE_SECONDS) -> float:
    return backoff(attempts, base, RETRY_MAX_SECONDS)


class LostSessions:
    """The sessions lost with a part on the wire, for `OutcomeRecorder` (its state, declared here)."""

    store: Store
    late: LateAnswers
    order: PhoneOrder
    retry_base: float
    # part id -> sessions lost in a row with it the oldest submit unanswered (`gateway.outcomes`).
    losses: OrderedDict[int, int]
    answered_before: dict[int, dict[str, int]]
    answered: Counter[str]
    write: Callable[..., Awaitable[None]]
    _another_up: Callable[[ClaimedPart, str], bool]

    async def _lost_on_the_wire(self, name: str, part: ClaimedPart, result: SubmitResult) -> None:
        """On the wire when the connection went: the SMSC may have it, and no answer can come any
        more. It keeps its turn (before later SMS to the same phone, F5) and its re-send is logged as
        a possible duplicate (R-7.5); one the SMSC may have ended the session on is counted as an
        attempt, and one that ended several in a row backs off or is held (`gateway.outcomes`).
        One whose SMSC may still say it took it (`result.late`: a CIMD2 status report or an SMPP
        receipt, which name its SMS by phone and time, `smsc.lostsubmits`) is watched for that answer,
        its turn kept: its link holds its re-send until the reports owed after the next login or bind
        could be read (`lateholds`)."""
        store = self.store
        self.late.may_have(part.id, name)
        delay: float | None = None
        error = f"{result.error}; {LINK_LOST}"
        # Behind an older SMS to the same phone that backs off: due with it, not before it (F5).
        delay = self.order.behind_suspect(part, store.clock())
        if result.lost_behind:
            # Behind an older submit the SMSC left unanswered too: lost with it, not its own doing;
            # still a send, counted (the copies an SMSC that drops every busy session gets are capped).
            log.warning("mt.link_lost_on_the_wire", part=part.id, link=name, error=result.error,
                        behind=result.lost_behind, retry_in=delay)  # fmt: skip
            await self.write(
                part.id, lambda: store.queue.release(part.id, delay=delay, error=error, count=True)
            )
            self.late.watch(name, part, result)
            return
        losses = 0
        if result.lost_behind == 0:  # None: a session we closed (a response timeout, a general error)
            losses = self.losses.pop(part.id, 0) + 1
            self.losses[part.id] = losses
            self.answered_before.setdefault(part.id, {}).setdefault(name, self.answered[name])
            if len(self.losses) > LOSSES_KEPT:
                self.forget_losses(next(iter(self.losses)))
        why = SESSION_KILLER.format(losses, name)
        # Held only once other SMS went through its link meanwhile: an SMSC that ends every session on
        # any submit would otherwise hold one waiting SMS after another, each needing a human once it
        # is well again. Without that proof it backs off on, as long again before its hold.
        before = self.answered_before.get(part.id, {}).get(name, self.answered[name])
        others_went = self.answered[name] > before
        if losses >= HOLD_AFTER_LOSSES and (others_went or losses >= 2 * HOLD_AFTER_LOSSES):
            self.forget_losses(part.id)  # the later SMS to its phone go now
            # LINK_LOST in its note: should it expire held, it may have reached the phone (its bounce
            # says delivery unknown, `QueueRepo.expire_batch`), and its re-send is a possible duplicate.
            reason = (
                f"held: {why}; {LINK_LOST}: it may have reached the phone each time"
                " (queue retry sends it again)"
            )
            log.warning("mt.hold_session_killer", part=part.id, message=part.message_id, link=name,
                        losses=losses, reason=why)  # fmt: skip
            await self.write(part.id, lambda: store.queue.hold_part(part.id, reason))
            self.late.watch_held(name, part.id, result, udh=part.udh)
            return
        if losses >= SUSPECT_AFTER_LOSSES:
            # Kept first in line it ended every new session: the other SMS go before it meanwhile.
            own = 0.0 if self._another_up(part, name) else retry_delay(losses - 1, self.retry_base)
            delay = own if delay is None else max(own, delay)
            self.order.suspect(part, store.clock() + delay)
            error = f"{error}; {why}"
            log.warning("mt.session_killer_suspected", part=part.id, message=part.message_id, link=name,
                        losses=losses, retry_in=delay, reason=why)  # fmt: skip
        else:
            log.warning("mt.link_lost_on_the_wire", part=part.id, link=name, error=result.error)
        await self.write(part.id, lambda: store.queue.release(part.id, delay=delay, error=error, count=True))
        self.late.watch(name, part, result)

    def forget_losses(self, part_id: int) -> None:
        """The part ends no session (answered, held or ended): nothing waits for it any more."""
        self.order.forget(part_id)
        self.late.silent.forget(part_id)
        self.losses.pop(part_id, None)
        self.answered_before.pop(part_id, None)
