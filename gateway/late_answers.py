"""Submits the SMSC did not answer in time, and the answers that still come for them.

A submit that went out and was not answered in time (`Outcome.UNANSWERED`) may well have reached
the SMSC, so the part is not sent again at once: it waits out the link's late-answer grace, and an
answer that arrives meanwhile settles it as if it had come in time (its receipt then matches). Only
when the grace passes without one is it sent again, logged as a possible duplicate. The dispatcher
owns the parts; this keeps which of them wait for a late answer and applies the answers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import structlog

from gateway.store.db import ClaimedPart, Finished, Store
from gateway.store.queue import AWAITING_LATE
from smsc.base import Outcome, SubmitResult

log = structlog.get_logger(__name__)

# Late answers that settle a part: it was taken, or refused for good.
SETTLING = (Outcome.ACCEPTED, Outcome.REJECTED, Outcome.MALFORMED)


class LateAnswers:
    """The dispatcher's unanswered submits. `pacing` is the dispatcher's set of parts claimed but not
    yet handed to their link, `avoid` its failover memory; both are shared, not copied."""

    def __init__(
        self,
        store: Store,
        on_finished: Callable[[list[Finished]], None],
        *,
        pacing: set[int],
        avoid: dict[int, set[str]],
    ) -> None:
        self.store = store
        self.on_finished = on_finished
        self.pacing = pacing
        self.avoid = avoid
        self.unanswered: dict[int, str] = {}  # part id -> link whose submit of it went unanswered
        self.settled: set[int] = set()  # parts in `pacing` that a late answer settled: not to be sent
        self.watchers: set[asyncio.Task[None]] = set()  # each waits for one late answer
        self.resent: Counter[str] = Counter()  # per link: parts sent again that it may have had

    def settled_meanwhile(self, part_id: int) -> bool:
        """Whether a late answer settled the part while its re-send waited its turn (it is then not sent)."""
        if part_id in self.settled:
            self.settled.discard(part_id)
            return True
        return False

    def sending_again(self, part_id: int, link: str) -> None:
        """The part goes out again: if its previous submit went unanswered, this may be a duplicate."""
        earlier = self.unanswered.pop(part_id, None)
        if earlier is not None:
            reason = "sent again: the previous submit went unanswered (no answer in time, or connection lost)"
            log.warning("mt.possible_duplicate", part=part_id, link=link, earlier=earlier, reason=reason)
            self.resent[earlier] += 1

    def forget(self, part_id: int) -> None:
        self.unanswered.pop(part_id, None)

    async def defer(self, name: str, part: ClaimedPart, result: SubmitResult, backoff: float) -> None:
        """Defer the part by the link's grace (or its back-off, if longer) and take the SMSC's answer
        if it still comes."""
        wait = max(result.retry_after, backoff)
        error = f"{result.error}; {AWAITING_LATE}"
        await self.store.write(lambda: self.store.queue.release(part.id, delay=wait, error=error, count=True))
        self.unanswered[part.id] = name
        log.warning("mt.unanswered", part=part.id, link=name, error=result.error, resend_in=wait)
        if result.late is not None:
            task = asyncio.create_task(self._watch(name, part.id, result.late))
            self.watchers.add(task)
            task.add_done_callback(self.watchers.discard)

    async def _watch(self, name: str, part_id: int, late: asyncio.Future[SubmitResult | None]) -> None:
        result = await late
        if result is None:
            return  # grace over or connection gone: the part goes again when due
        log.info("mt.late_answer", part=part_id, link=name, outcome=result.outcome.value,
                 smsc_id=result.message_id)  # fmt: skip

        def settle() -> bool:
            pacing = part_id in self.pacing  # claimed again but not yet on the wire: cancel that
            if not (pacing or self.store.queue.is_waiting(part_id)):
                return False
            self._apply(name, part_id, result, pacing=pacing)
            return True

        try:
            settled = await self.store.write(settle)
        except Exception:  # not recorded: a re-send waiting its turn goes ahead after all
            self.settled.discard(part_id)
            log.exception("mt.late_answer_failed", part=part_id, link=name)
            return
        if not settled and result.outcome in SETTLING:
            log.warning("mt.possible_duplicate", part=part_id, link=name, smsc_id=result.message_id,
                        reason="the SMSC answered after the part had been sent again")  # fmt: skip

    def _apply(self, name: str, part_id: int, result: SubmitResult, *, pacing: bool) -> None:
        """Record a late answer as if it had come in time; call inside a store write. A part being
        sent again (`pacing`) is settled too, and the dispatcher then sends nothing."""
        queue = self.store.queue
        if pacing and result.outcome in SETTLING:
            self.settled.add(part_id)
        if result.outcome is Outcome.ACCEPTED:
            self.avoid.pop(part_id, None)
            self.unanswered.pop(part_id, None)
            self.on_finished(queue.mark_submitted(part_id, name, result.message_id))
            if result.message_id is None:
                log.warning("mt.unconfirmed", part=part_id, link=name)
        elif result.outcome in SETTLING:
            self.unanswered.pop(part_id, None)
            error = result.error or result.outcome.value
            self.on_finished(queue.mark_part_final(part_id, "failed", error, link=name))
        else:  # refused for now: nothing reached the phone, so it may go again at once
            self.unanswered.pop(part_id, None)
            if not pacing:
                queue.due_now(part_id)

    def stop(self) -> None:
        """A late answer not yet in is taken as none: the part waits and goes again when due."""
        for watcher in self.watchers:
            watcher.cancel()
