"""Submits the SMSC did not answer in time, and the answers that still come for them.

A submit that went out and was not answered in time (`Outcome.UNANSWERED`) may well have reached
the SMSC, so the part is not sent again at once: it waits out the link's late-answer grace, and an
answer that arrives meanwhile settles it as if it had come in time (its receipt then matches). Only
when the grace passes without one is it sent again, logged as a possible duplicate. The dispatcher
owns the parts; this keeps which of them wait for a late answer and applies the answers.

A part whose last attempt went unanswered waits on hold instead (`gateway.outcomes.MAX_ATTEMPTS`),
and its answer may still come too: an acceptance settles it as `submitted` with the SMSC's message
id (held, its receipt matched nothing and a `queue retry` sent the phone a second copy); a refusal
leaves it on hold for the human its spent attempts call for (`watch_held`).

A part the SMSC left unanswered send after send is held (`gateway.unanswered`, `hold`), watched as
one held at its last attempt is; the count of its sends starts again at any answer, a late one too.

A late acceptance of a part taken meanwhile by its re-send (answered in time) gives it a second SMSC
id (`QueueRepo.second_id`): both copies reached the SMSC, and the receipt of either may be the one
saying the phone has it. Only logged, that copy's receipt matched nothing, and the other's failure
failed the part and bounced the SMS the phone had. A late acceptance of a part its re-send ended
meanwhile (refused for good, or reported undelivered) keeps the id as the part's
(`QueueRepo.ended_copy`): its DELIVRD makes the part delivered after all.

A late answer to a part of a long SMS that went again whole by another link meanwhile
(`gateway.longsms`, a new reference) is the old SMS's: logged, it settles nothing (the part was set
sent by the link left, under the old reference, and never went with the rest).

A late refusal of a part taken meanwhile by its re-send says that submit never reached the phone: if
it was the last of the part's submits that went unanswered, nothing else may have, and the "may have
reached the phone twice" its row keeps (`parts.resent_after`) is taken back. It stayed, and a
second `mt.possible_duplicate` was logged for the refusal itself.

What this process saw is not all: a part whose submit went unanswered, or was on the wire when the
connection went or the daemon died, carries a note saying so (`ClaimedPart.maybe_sent`). Claimed by a
process that knows nothing of that submit (after a restart, also one inside the grace, or a crash),
its next send is logged and counted as a possible duplicate all the same.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable

import structlog

from gateway.longsms import reference_changed
from gateway.store.db import ClaimedPart, Finished, Store
from gateway.store.partnotes import AWAITING_LATE, EARLIER_UNKNOWN
from gateway.unanswered import SILENT_SMSC, SilentSends
from smsc.base import Outcome, SubmitResult

log = structlog.get_logger(__name__)

# Late answers that settle a part: it was taken, or refused for good.
SETTLING = (Outcome.ACCEPTED, Outcome.REJECTED, Outcome.MALFORMED)
# A part's "may have reached the phone twice" taken back (module docstring).
REFUTED = "UPDATE parts SET resent_after = NULL WHERE id = ? AND resent_after IS NOT NULL"


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
        # part id -> link whose submit of it went unanswered (None: a submit this process did not see)
        self.unanswered: dict[int, str | None] = {}
        # Parts whose note of a submit the SMSC may have (`ClaimedPart.maybe_sent`) this process knows
        # the truth of: it counts their possible duplicates itself, or knows that the part was not
        # sent after all (refused late for now, claimed ahead and never handed to a link).
        self.noted: set[int] = set()
        self.settled: set[int] = set()  # parts in `pacing` that a late answer settled: not to be sent
        # Each watched part's late answer, until its watch has written what it read (`answer_read`).
        self.awaited: dict[int, asyncio.Future[SubmitResult | None]] = {}
        self.withheld: set[int] = set()  # those of them put back for it, logged once (`withheld_once`)
        self.watchers: set[asyncio.Task[None]] = set()  # each waits for one late answer
        self.resent: Counter[str] = Counter()  # per link: parts sent again that it may have had
        # Per part, the links its re-sends were counted on in `resent`, while a late refusal may yet
        # say none was a duplicate (kept as `doubtful` is): the refusal took back the warning, and
        # status and /metrics still counted it.
        self.counted: dict[int, list[str]] = {}
        # Parts sent again after a submit that went unanswered -> that submit's link (EARLIER_UNKNOWN:
        # before this start), until taken or ended: their acceptance keeps it (`parts.resent_after`).
        self.resent_after: dict[int, str] = {}
        self.silent = SilentSends()  # parts' submits unanswered in a row (`gateway.unanswered`)
        # Per part, its submits that went unanswered (or before this start) and that no late refusal
        # has said never reached the phone; and its watches still open. Kept past `forget` while one
        # is open (`ended`): a refusal read after the re-send was taken takes the warning back only
        # when no other submit of the part may have reached the phone.
        self.doubtful: Counter[int] = Counter()
        self.watching: Counter[int] = Counter()
        self.ended: set[int] = set()

    def settled_meanwhile(self, part_id: int) -> bool:
        """Whether a late answer settled the part while its re-send waited its turn (it is then not sent)."""
        if part_id in self.settled:
            self.settled.discard(part_id)
            return True
        return False

    def answer_read(self, part_id: int) -> bool:
        """Whether an answer settling the part was read and its write has not run yet. Reading it ends
        the part's hold at once (`smsc.lateholds`), but the write that records it waits its turn behind
        the store's others (an MO flood's commits): the dispatcher, finding the part due and nothing
        holding it, sent it again meanwhile, and the write found it on the wire."""
        late = self.awaited.get(part_id)
        if late is None or not late.done() or late.cancelled() or late.exception() is not None:
            return False
        result = late.result()
        return result is not None and result.outcome in SETTLING

    def withheld_once(self, part_id: int) -> str | None:
        """The event to log for the part put back for its answer read (`answer_read`): once, not at
        each look a second while the store is behind (an MO flood's commits)."""
        if part_id in self.withheld:
            return None
        self.withheld.add(part_id)
        return "mt.resend_withheld"

    def claimed(self, parts: Iterable[ClaimedPart]) -> None:
        """Parts just claimed: those whose note says an SMSC may have an earlier submit of them, which
        this process did not see (a restart, a crash), go out next as possible duplicates."""
        for part in parts:
            if part.maybe_sent and part.id not in self.noted:
                self.noted.add(part.id)
                self.unanswered.setdefault(part.id, None)
                self.doubtful[part.id] += 1  # what became of that submit, nobody here knows

    def may_have(self, part_id: int, link: str) -> None:
        """`link`'s SMSC may have taken the part without answering: its next send may be a duplicate."""
        self.unanswered[part_id] = link
        self.noted.add(part_id)
        self.doubtful[part_id] += 1

    def not_sent(self, part_ids: Iterable[int]) -> None:
        """Claimed parts given back unsent: the note a requeue puts on them (`RECOVERED`) is no reason
        to count their next send as a possible duplicate."""
        self.noted.update(part_ids)

    def sending_again(self, part_id: int, link: str) -> None:
        """The part goes out again: if its previous submit went unanswered, this may be a duplicate."""
        if part_id not in self.unanswered:
            return
        earlier = self.unanswered.pop(part_id)
        if earlier is None:
            # Claimed before the stop without an answer recorded: submitted unanswered, cut off, or
            # claimed ahead and never handed to a link; which, the stopped process alone knew.
            reason = (
                "sent again: it was claimed for sending before this start and no answer was recorded;"
                " the SMSC may have had it (a submit unanswered or cut off) or not (never sent)"
            )
        else:
            reason = "sent again: the previous submit went unanswered (no answer in time, or connection lost)"
        log.warning("mt.possible_duplicate", part=part_id, link=link, earlier=earlier, reason=reason)
        self.resent[earlier or link] += 1  # a submit before the start: counted on the link it goes by now
        self.counted.setdefault(part_id, []).append(earlier or link)
        # The first such submit's link: the one the phone may have had since the longest.
        self.resent_after.setdefault(part_id, EARLIER_UNKNOWN if earlier is None else earlier)

    def forget(self, part_id: int) -> str | None:
        """The part is settled (taken, or ended): nothing more to know of it. Returns the link of the
        submit that went unanswered before it was sent again (`resent_after`), for its acceptance."""
        self.unanswered.pop(part_id, None)
        self.silent.forget(part_id)
        self.noted.discard(part_id)
        if self.watching[part_id]:
            self.ended.add(part_id)  # a late answer may still take back its warning (`_watch`)
        else:
            self.doubtful.pop(part_id, None)
            self.counted.pop(part_id, None)
        return self.resent_after.pop(part_id, None)

    async def defer(self, name: str, part: ClaimedPart, result: SubmitResult, backoff: float) -> None:
        """Defer the part by the link's grace (or its back-off, if longer) and take the SMSC's answer
        if it still comes."""
        wait = max(result.retry_after, backoff)
        error = f"{result.error}; {AWAITING_LATE}"
        await self.store.write(lambda: self.store.queue.release(part.id, delay=wait, error=error, count=True))
        self.may_have(part.id, name)
        log.warning("mt.unanswered", part=part.id, link=name, error=result.error, resend_in=wait)
        if result.late is not None:
            self._start_watch(name, part.id, result.late, held=False, udh=part.udh)

    async def hold(self, name: str, part: ClaimedPart, result: SubmitResult, sends: int) -> None:
        """Hold the part the SMSC answered none of `sends` submits of (`gateway.unanswered`); its
        answer may still come, and a late acceptance settles it (`watch_held`)."""
        reason = SILENT_SMSC.format(sends, name)
        await self.store.write(lambda: self.store.queue.hold_part(part.id, reason))
        self.silent.forget(part.id)
        self.may_have(part.id, name)  # its `queue retry` is a possible duplicate
        log.warning("mt.hold_unanswered", part=part.id, message=part.message_id, link=name, sends=sends,
                    reason=reason)  # fmt: skip
        self.watch_held(name, part.id, result, udh=part.udh)

    def watch(self, name: str, part: ClaimedPart, result: SubmitResult) -> None:
        """Take the SMSC's answer to the part's submit lost with its connection, if one still comes (a
        CIMD2 status report or an SMPP receipt read within the grace: `smsc.lostsubmits`), as a late
        answer."""
        if result.late is not None:
            self._start_watch(name, part.id, result.late, held=False, udh=part.udh)

    def watch_held(self, name: str, part_id: int, result: SubmitResult, *, udh: bytes = b"") -> None:
        """The part went on hold with its last submit unanswered (written already): take the SMSC's
        answer if it still comes (module docstring)."""
        if result.late is not None:
            self._start_watch(name, part_id, result.late, held=True, udh=udh)

    def _start_watch(
        self, name: str, part_id: int, late: asyncio.Future[SubmitResult | None], *, held: bool, udh: bytes
    ) -> None:
        task = asyncio.create_task(self._watch(name, part_id, late, held=held, udh=udh))
        self.watchers.add(task)
        self.awaited[part_id] = late
        self.watching[part_id] += 1

        def done(task: asyncio.Task[None]) -> None:
            self.watchers.discard(task)
            if self.awaited.get(part_id) is late:
                del self.awaited[part_id]
                self.withheld.discard(part_id)
            self.watching[part_id] -= 1
            if self.watching[part_id] <= 0:
                del self.watching[part_id]
                if part_id in self.ended:
                    self.ended.discard(part_id)
                    self.doubtful.pop(part_id, None)
                    self.counted.pop(part_id, None)

        task.add_done_callback(done)

    async def _watch(
        self,
        name: str,
        part_id: int,
        late: asyncio.Future[SubmitResult | None],
        *,
        held: bool = False,
        udh: bytes = b"",
    ) -> None:
        result = await late
        if result is None:
            return  # grace over or connection gone: the part goes again when due (or stays held)
        log.info("mt.late_answer", part=part_id, link=name, outcome=result.outcome.value,
                 smsc_id=result.message_id)  # fmt: skip
        self.silent.forget(part_id)  # an answer: its sends are counted afresh
        queue = self.store.queue
        refused = result.outcome not in (Outcome.ACCEPTED, Outcome.UNANSWERED)
        if refused and self.doubtful[part_id] > 0:
            self.doubtful[part_id] -= 1  # that submit never reached the phone

        def settle() -> str | None:
            """What the answer did: "settled", "held" (a hold it leaves as it is), "moved", or None."""
            if udh and reference_changed(self.store, part_id, udh):
                # Its long SMS went again whole by another link meanwhile (`gateway.longsms`), under a
                # new reference: the copy answered is the old SMS's. Settled as this one, the part was
                # set sent by the link left, with the old reference, and never went with the rest.
                return "moved"
            # Claimed again but not yet on the wire: cancel that. Not yet in `pacing` when the claim
            # ran just before in the same batch of writes, or put back unsent for this answer and not
            # yet released (`answer_read`): claimed, and not sent again since the submit went
            # unanswered (`sending_again` forgets that as the part goes).
            pacing = part_id in self.pacing or (part_id in self.unanswered and queue.is_claimed(part_id))
            if pacing or queue.is_waiting(part_id):  # also a held part a `queue retry` put back
                self._apply(name, part_id, result, pacing=pacing)
                return "settled"
            if held and queue.is_held(part_id):
                if result.outcome is not Outcome.ACCEPTED:
                    return "held"  # refused: nothing reached the phone, and its attempts are spent
                self._apply(name, part_id, result, pacing=False)
                return "settled"
            if result.outcome is Outcome.ACCEPTED and result.message_id:
                # Taken meanwhile by a copy answered in time: this copy's receipts count too.
                finished = queue.second_id(part_id, name, result.message_id)
                if finished is not None:
                    self.on_finished(finished)
                    return "second id"
                if (finished := queue.ended_copy(part_id, name, result.message_id)) is not None:
                    self.on_finished(finished)  # its re-send ended it meanwhile: this copy's receipt decides
                    return "ended copy"
            if refused and self.doubtful[part_id] <= 0:
                # Taken meanwhile (or on the wire again): no other submit of it may have reached the
                # phone. Its re-send's acceptance, still to come, keeps no warning either.
                self.resent_after.pop(part_id, None)
                with self.store.db.transaction() as conn:
                    conn.execute(REFUTED, (part_id,))
                return "refuted"
            return None

        try:
            settled = await self.store.write(settle)
        except Exception:  # not recorded: a re-send waiting its turn goes ahead after all
            self.settled.discard(part_id)
            log.exception("mt.late_answer_failed", part=part_id, link=name)
            return
        if settled == "held":
            log.info("mt.late_refusal_held", part=part_id, link=name, outcome=result.outcome.value)
        elif settled == "settled" and held:
            log.warning("mt.hold_settled_late", part=part_id, link=name, smsc_id=result.message_id)
        elif settled == "moved" and result.outcome is Outcome.ACCEPTED:
            log.warning("mt.possible_duplicate", part=part_id, link=name, smsc_id=result.message_id,
                        reason="the SMSC answered after its long SMS had gone again whole by another link"
                        " under a new reference: the phone may have this part twice")  # fmt: skip
        elif settled == "second id":
            log.warning("mt.possible_duplicate", part=part_id, link=name, smsc_id=result.message_id,
                        reason="the SMSC answered after the part had been sent again and taken:"
                        " it has both copies, and a receipt of either counts")  # fmt: skip
        elif settled == "ended copy":
            log.warning("mt.late_accept_ended", part=part_id, link=name, smsc_id=result.message_id,
                        reason="the SMSC accepted a copy sent before the one that ended the part:"
                        " its receipt says whether the phone has it")  # fmt: skip
        elif settled == "refuted":
            for link in self.counted.pop(part_id, ()):  # nor was any re-send a duplicate: uncounted
                self.resent[link] = max(0, self.resent[link] - 1)
            log.info("mt.late_refusal_resent", part=part_id, link=name, outcome=result.outcome.value,
                     twice="no: no other submit of it went unanswered")  # fmt: skip
        elif settled is None and result.outcome is Outcome.ACCEPTED:
            log.warning("mt.possible_duplicate", part=part_id, link=name, smsc_id=result.message_id,
                        reason="the SMSC answered after the part had been sent again")  # fmt: skip
        elif settled is None and refused:
            # Refused: that copy never reached the phone; another submit of it still may have.
            log.info("mt.late_refusal_resent", part=part_id, link=name, outcome=result.outcome.value,
                     twice="maybe: another submit of it went unanswered")  # fmt: skip

    def _apply(self, name: str, part_id: int, result: SubmitResult, *, pacing: bool) -> None:
        """Record a late answer as if it had come in time; call inside a store write. A part being
        sent again (`pacing`) is settled too, and the dispatcher then sends nothing."""
        queue = self.store.queue
        if pacing and result.outcome in SETTLING:
            self.settled.add(part_id)
        if result.outcome is Outcome.ACCEPTED:
            self.avoid.pop(part_id, None)
            earlier = self.forget(part_id)  # a re-send's, answered late (`sending_again`)
            self.on_finished(queue.mark_submitted(part_id, name, result.message_id, resent_after=earlier))
            if result.message_id is None:
                log.warning("mt.unconfirmed", part=part_id, link=name)
        elif result.outcome in SETTLING:
            self.forget(part_id)
            error = result.error or result.outcome.value
            self.on_finished(queue.mark_part_final(part_id, "failed", error, link=name))
        else:  # refused for now: nothing reached the phone, so it may go again at once (its note stays)
            self.unanswered.pop(part_id, None)
            if not pacing:
                queue.due_now(part_id)

    async def end(self, timeout: Callable[[], float]) -> None:
        """At a stop, once the links have unbound: an answer read until then settles its part as any
        late answer (their connections' close resolved the rest as none). Cancelled before the stop
        waited for the submits on the wire and the unbinds, the watchers threw away an acceptance read
        meanwhile, and the next start sent the SMS again, its copy's receipt deciding the part. One
        still waiting at `timeout` (a link whose stop was cut off) is taken as none: the part waits
        and goes again when due. `timeout` is asked only when one waits: asked, a stop's budget cut
        short says so (`StopBudget.left`), and with nothing to wait for nothing is cut."""
        if self.watchers:
            await asyncio.wait(set(self.watchers), timeout=timeout())
        for watcher in list(self.watchers):
            watcher.cancel()
