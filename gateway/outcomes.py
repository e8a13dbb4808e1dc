"""What became of a part the dispatcher claimed, written to the store: the SMSC's answer, or why the
part could not go.

Throttling never fails a part; temporary faults back off exponentially, or fail over at once to
another link that is up; permanent refusals fail the part (and so its message, once); a part that
failed too often waits on `hold` for a human. A submit that went unanswered is handed to
`gateway.late_answers`; one left unanswered send after send is held (`gateway.unanswered`). A
premium answer (`ClaimedPart.via`) fails over to no link but another bind of its vote's SMSC
account (`gateway.linkchoice`): the link noted in `avoid` only goes last among those, and it
otherwise backs off and waits for its own link, lost session or not.

A part on the wire when its session was lost keeps its turn: it goes first on the next session, so
that it reaches the phone before the SMS accepted after it. An SMSC that crashes or cuts the session
on one particular SMS then ended every new session on it, and nothing else went out until its 50
attempts were spent. So the part the SMSC was handling as the session went (the oldest it left
unanswered, `SubmitResult.lost_behind` 0) is suspected after SUSPECT_AFTER_LOSSES such sessions in a
row: it no longer keeps its turn but backs off as a failed attempt does and goes after the parts
claimed with it (`suspects_last`); at HOLD_AFTER_LOSSES, once other SMS went through its link
meanwhile (twice as many if none did), it waits on `hold` with a reason that says so. The parts
behind it were only lost with it: they keep their turn, logged as possible duplicates; their sends
are attempts all the same (MAX_ATTEMPTS caps the copies an SMSC that drops every busy session gets).
The later SMS to a suspect's phone wait with it, not to reach the phone before it (F5): those lost
with it, and those claimed meanwhile (`PhoneOrder.behind_suspect`), go back to the queue due when it is.
So do the later SMS to the phone of a part handed back unsent (its link went, or is busy or
throttled) due a moment later (`gateway.phoneorder`): each due again a second after its own hand-back, a
phone's SMS handed back a few milliseconds apart as the link dropped came due apart, and a later one
was claimed first.
A session we end ourselves (a CIMD2 general error, SMPP's bind lost, a response timeout), or one
the SMSC ends in order (SMPP's unbind) or by sending bytes no PDU can be framed from, blames no
submit (`lost_behind` None): only a session the SMSC drops without a word does.

The SMSC's answer exists nowhere else until it is on disk, so a write the store refuses for a
passing reason is made again until it succeeds (`OutcomeRecorder.write`); an acceptance whose write
the dispatcher's stop cuts off goes to a side file the next start records it from (`gateway.answerjournal`).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Collection

import structlog

from gateway.answerjournal import Unwritten
from gateway.bitelog import FaultLog
from gateway.durablewrite import until_on_disk
from gateway.late_answers import LateAnswers
from gateway.linkchoice import LinkChoice
from gateway.longsms import LONG_SMS_WAIT_SECONDS
from gateway.phoneorder import PhoneOrder
from gateway.retryafter import HOLD_AFTER_LOSSES, RETRY_BASE_SECONDS, LostSessions, retry_delay
from gateway.store.db import ClaimedPart, Finished, Store
from gateway.store.partnotes import NO_LINK_UP
from gateway.unanswered import attempts_spent
from smsc.base import LinkState, Outcome, SubmitResult
from smsc.numbermask import without_numbers
from smsc.pacing import LinkPacer

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 50  # beyond this a part waits on hold for a human instead of retrying forever
NO_LINK_DELAY = 1.0
# A part whose number no configured link serves: the config changed after its mail was accepted
# (new mail to it is refused at RCPT). It failed only at the end of its validity, a day later,
# as "expired", having waited with no word said.
NO_ROUTE_NOTE = "no SMSC link serves {} any more (the links' prefixes changed after the mail was accepted)"
MIN_THROTTLE_RETRY = 0.05
# A part put back behind an older SMS to its phone is said at INFO once (`Outcomes.put_back`).
BEHIND_SUSPECT = "mt.behind_suspect"
SAID_BEHIND_KEPT = 10_000


def logged(error: str | None) -> str | None:
    """A link's error as the INFO log shows it: a phone number the SMSC quoted in its own words masked
    (`without_numbers`), so that `phone forget` leaves none in the journal. The part and the bounce
    keep the words whole."""
    return None if error is None else without_numbers(error)


class OutcomeRecorder(LostSessions):
    """Writes what became of the dispatcher's parts. `choice` holds the dispatcher's links by name,
    `late` its unanswered submits and `avoid` its failover memory; all shared, not copied."""

    def __init__(
        self,
        store: Store,
        on_finished: Callable[[list[Finished]], None],
        choice: LinkChoice,
        *,
        late: LateAnswers,
        avoid: dict[int, set[str]],
        retry_base: float = RETRY_BASE_SECONDS,
    ) -> None:
        self.store = store
        # Which link a part goes by; a part of a long SMS tied to its link (`LinkChoice.joined`) waits
        # out that link's throttling and backs off there (the phone joins the parts one SMSC sent alike).
        self.choice = choice
        self.on_finished = on_finished
        self.links = choice.links
        self.router = choice.router
        self.late = late
        self.avoid = avoid
        self.retry_base = retry_base
        # Writes not yet on disk: a part they are about is still `active` in the store although
        # its fate is known, so the requeue of a crashed dispatcher's parts waits for them.
        self.writing = 0
        self.unwritten = Unwritten(store.db.path)  # acceptances a stop cut off: kept in a side file
        self.on_wire: set[int] = set()  # handed to a link; answer and hold refused (`hold_on_error`)
        # Every part retries its write while the disk is full: one line a second for all (`FaultLog`).
        self.retry_log = FaultLog(log)
        # part id -> sessions lost in a row with it the oldest submit unanswered (module docstring).
        # Kept by this process only: after a restart a part starts afresh, as its re-send is
        # a possible duplicate anyway.
        self.losses: OrderedDict[int, int] = OrderedDict()
        # part id -> link -> `answered` of that link at the first of those sessions it lost there;
        # link -> submits it answered.
        self.answered_before: dict[int, dict[str, int]] = {}
        self.answered: Counter[str] = Counter()
        # Which SMS to a phone wait for an older one to it (F5): suspects and parts handed back.
        self.order = PhoneOrder(store.clock)
        # Parts whose wait behind an older SMS was said (`put_back`), until sent or ended (`forget`).
        self.said_behind: OrderedDict[int, None] = OrderedDict()

    async def record(self, name: str, part: ClaimedPart, result: SubmitResult, pacer: LinkPacer) -> None:
        """Write the answer of link `name` to its submit of the part; `pacer` has learnt it already."""
        store = self.store
        if result.outcome not in (Outcome.TEMPORARY, Outcome.UNANSWERED):
            self.forget_losses(part.id)  # the SMSC answered it: it ends no session
            self.answered[name] += 1
        elif result.outcome is Outcome.TEMPORARY and not (result.written or result.unsent):
            self.late.silent.forget(part.id)  # a fault for now, but answered (`gateway.unanswered`)
        if result.outcome is Outcome.ACCEPTED:
            earlier = self.forget(part.id)  # a re-send's: the link of a submit that went unanswered
            with self.unwritten.accepted(part, name, result.message_id, earlier):  # a stop may cut it off
                await self.write(
                    part.id,
                    lambda: self.on_finished(
                        store.queue.mark_submitted(part.id, name, result.message_id, part.message_id, earlier)
                    ),
                    replayable=True,  # rows only: may run again after a rollback, needs no savepoint
                )
            log.debug(
                "mt.submitted", message=part.message_id, part=part.id, link=name, smsc_id=result.message_id
            )
            if result.message_id is None:  # nothing to match a receipt to: expires unconfirmed
                log.warning("mt.unconfirmed", part=part.id, link=name)
        elif result.outcome is Outcome.THROTTLED:
            pause = await self._retry_uncounted(
                name, part, result, max(pacer.pause_left(), MIN_THROTTLE_RETRY)
            )
            log.info("mt.throttled", part=part.id, link=name, retry_in=pause)
        elif result.outcome is Outcome.TEMPORARY and result.retry_after and not result.written:
            # A full queue that may be the SMSC's as well as the phone's (SMPP's 0x14 with nothing else
            # answered meanwhile but other parts' repeated 0x14s, `smsc.smpp.submits.QueueFull`), or a
            # relative validity refused, the link now absolute (`smsc.smpp.submits.ValidityForm`): no
            # attempt counted, as for a throttle, since a full SMSC counted attempts up to a hold; the
            # link is not paused, since full phones' queues took an idle link down to its slowest rate.
            # Nor does it go at once to another link that refused it so too.
            tried = self.avoid.setdefault(part.id, set())
            tried.add(name)
            delay = await self._retry_uncounted(name, part, result, result.retry_after, tried)
            log.info("mt.deferred", part=part.id, link=name, error=logged(result.error), retry_in=delay,
                     counted=False)  # fmt: skip
        elif result.outcome is Outcome.TEMPORARY and result.unsent:
            # Handed to a link as its connection went, and refused before a byte was written: back
            # to the queue with its turn and its attempts as they were (a flapping link counted
            # each such refusal, and the back-off grew for SMS that never left).
            self.avoid.setdefault(part.id, set()).add(name)
            delay = 0.0 if self._another_up(part, name) else NO_LINK_DELAY
            due = self.order.handed_back(part, delay, store.clock())  # not before an earlier SMS to its phone
            await self.write(part.id, lambda: store.queue.release(part.id, delay=delay, count=False, due=due))
            log.info("mt.deferred", part=part.id, link=name, error=logged(result.error), retry_in=delay,
                     unsent=True)  # fmt: skip
        elif result.outcome in (Outcome.TEMPORARY, Outcome.UNANSWERED):
            # Another link takes it first next time; a premium answer's only if its account's (above).
            self.avoid.setdefault(part.id, set()).add(name)
            if part.attempts >= MAX_ATTEMPTS:
                reason = attempts_spent(self.late, name, part, result)
                self.forget_losses(part.id)  # no suspect any more: the later SMS to its phone go now
                await self.write(part.id, lambda: store.queue.hold_part(part.id, reason))
                log.warning(
                    "mt.hold", part=part.id, link=name, error=logged(result.error), reason=logged(reason)
                )
                if result.late is not None:
                    # Its answer may still come: an acceptance settles it (its receipt then matches, and
                    # no `queue retry` sends a second copy); a refusal leaves it held.
                    self.late.watch_held(name, part.id, result)
            elif result.outcome is Outcome.UNANSWERED:
                sends = self.late.silent.sent(part.id, name, self.answered[name])
                if self.late.silent.to_hold(part.id, name, self.answered[name], HOLD_AFTER_LOSSES):
                    self.forget_losses(part.id)  # the later SMS to its phone go now
                    await self.late.hold(name, part, result, sends)
                else:
                    await self.late.defer(name, part, result, retry_delay(part.attempts, self.retry_base))
            elif result.written:
                await self._lost_on_the_wire(name, part, result)
            else:
                delay = retry_delay(part.attempts, self.retry_base)
                # With another link available, fail over at once instead of waiting out the back-off;
                # not the rest of a long SMS its link took a part of, which backs off for that link, no
                # longer than the SMS waits for it before it goes whole by the other (`gateway.longsms`).
                # Not to a link that just failed it too: both refusing (a phone's full queue, 0x08
                # on each), it went straight back to this one, and 50 attempts were spent in a second.
                if self._another_up(part, name, self.avoid[part.id]):
                    delay = min(delay, LONG_SMS_WAIT_SECONDS) if self.choice.joined(part, name) else 0.0
                error = result.error
                await self.write(
                    part.id, lambda: store.queue.release(part.id, delay=delay, error=error, count=True)
                )
                log.info("mt.deferred", part=part.id, link=name, error=logged(result.error), retry_in=delay)
        else:
            error = result.error or result.outcome.value
            await self.write(part.id, lambda: self.on_finished(self.final(part, "failed", error, link=name)))
            log.info("mt.failed", part=part.id, message=part.message_id, link=name,
                     outcome=result.outcome.value, error=logged(result.error))  # fmt: skip

    async def _retry_uncounted(
        self, name: str, part: ClaimedPart, result: SubmitResult, wait: float, tried: Collection[str] = ()
    ) -> float:
        """Back to the queue after `wait`, no attempt counted, `result`'s refusal noted (the last the
        part hears, should it expire); at once when another link up (not one `tried`) may take it, and
        the link noted in `avoid`. Due again when the wait ended, it went back to the same link, refused
        again, for as long as that lasted, while later SMS to the same phones went by the other past it.
        Not the rest of a long SMS its link took a part of (`LinkChoice.joined`). Returns the wait."""
        if self._another_up(part, name, tried) and not self.choice.joined(part, name):
            self.avoid.setdefault(part.id, set()).add(name)
            wait = 0.0
        due = self.order.handed_back(part, wait, self.store.clock())
        said, queue = result.error, self.store.queue
        await self.write(
            part.id, lambda: queue.release(part.id, delay=wait, count=False, due=due, refusal=said)
        )
        return wait

    async def settle_unsendable(self, parts: list[ClaimedPart], now: float) -> None:
        """Claimed parts that cannot go: expired ones end, those no configured link serves fail, the
        rest (their links down or busy) go back to the queue without counting an attempt, noted
        `NO_LINK_UP` or as waiting for their long SMS's link (`LinkChoice.notes`); in one write. Those
        no link up may take wait there unclaimed until one comes up (`gateway.linkwaits`)."""
        notes = self.choice.notes(parts)
        unrouted = {p.id: p.destination for p in parts if p.expires_at > now and self._unrouted(p)}
        if unrouted:
            log.warning("mt.no_route", parts=len(unrouted), first=next(iter(unrouted.values())))
        # No link up may take them: they wait unclaimed until one comes up (`gateway.linkwaits`); not a
        # long SMS waiting for its own link while another SMSC's is up, which may go whole by that one.
        could_go = self.choice.could_go
        waits = {
            p.id
            for p in parts
            if p.expires_at > now and p.id not in unrouted and p.id not in notes
            if not could_go(p.destination, p.via)
        }
        parked: list[int] = []
        # One due time for the parts handed back together, and none before an earlier SMS to the same
        # phone handed back a moment ago (F5).
        at = self.store.clock()
        due = {
            p.id: self.order.handed_back(p, NO_LINK_DELAY, at)
            for p in parts
            if p.expires_at > now and p.id not in unrouted and p.id not in waits
        }

        def settle() -> None:
            parked.clear()  # written again after a failed commit
            expired: list[int] = []  # all end, then each message settles once (`QueueRepo.expire_unsent`)
            for part in parts:
                if self.late.settled_meanwhile(part.id):
                    continue  # a late answer to its earlier submit settled it: nothing to end or requeue
                if part.expires_at <= now:  # the bounce is queued with the state change, or neither
                    self.forget(part.id)
                    expired.append(part.id)
                elif part.id in unrouted:
                    self.on_finished(self.final(part, "failed", NO_ROUTE_NOTE.format(part.destination)))
                elif part.id in waits and not could_go(part.destination, part.via):  # none came up since
                    self.store.queue.release(part.id, delay=None, refusal=NO_LINK_UP, at_expiry=True)
                    parked.append(part.id)
                else:  # its expiry then says no link was up (`partnotes.expiry_note`)
                    self.store.queue.release(
                        part.id,
                        delay=NO_LINK_DELAY,
                        count=False,
                        due=due.get(part.id, at),
                        refusal=notes.get(part.id, NO_LINK_UP),
                    )
            self.on_finished(self.store.queue.expire_unsent(expired))

        await self.write(None, settle)
        if parked:  # once a part and outage: not claimed again while it waits
            log.info("mt.waiting_for_link", parts=len(parked), first=parked[0])

    async def hold_on_error(self, name: str, part: ClaimedPart, exc: Exception, *, handed: bool) -> None:
        """Held for a human. A hold refused too leaves it `active`: if `handed` to its link, the requeue of
        a crashed run's parts (`on_wire`) puts it back as possibly sent, not as one never sent."""
        log.error("mt.internal_error", part=part.id, link=name, exc_info=exc)
        reason = f"internal error: {exc!r}"[:500]
        try:
            await self.store.write(lambda: self.store.queue.hold_part(part.id, reason))
        except Exception:
            log.exception("mt.hold_failed", part=part.id)
            if handed:
                self.on_wire.add(part.id)

    async def write(
        self, part_id: int | None, write: Callable[[], object], *, replayable: bool = False
    ) -> None:
        """Write what became of a part until the store takes it (`gateway.durablewrite`). Given up (or
        turned into a hold, itself a write that fails the same way) the part stayed `active`: sent
        again at the next start although the SMSC took it, or expired with a bounce saying it was
        never sent, its receipt dropped."""

        def refused(exc: Exception, retry_in: float, _times: int) -> None:
            self.retry_log.warning(
                "mt.record_retry", exc, part=part_id, error=repr(exc)[:200], retry_in=retry_in
            )

        self.writing += 1
        try:
            await until_on_disk(self.store, write, refused, replayable=replayable)
        finally:
            self.writing -= 1

    def final(
        self, part: ClaimedPart, state: str, error: str | None, *, link: str | None = None
    ) -> list[Finished]:
        return self.final_all([part], state, error, link=link)  # `link`: the SMSC that refused it

    def final_all(
        self, parts: list[ClaimedPart], state: str, error: str | None, *, link: str | None = None
    ) -> list[Finished]:
        """End parts that will not be sent, for one reason, together (inside a store write): each message
        settled once, after all its parts ("both parts: …", not "part 1 of 2: … (part 2 being sent)")."""
        for part in parts:
            self.forget(part.id)
        return self.store.queue.end_parts([part.id for part in parts], state, error, link=link)

    async def put_back(
        self, parts: list[tuple[ClaimedPart, float]], event: str | None = BEHIND_SUSPECT
    ) -> None:
        """Claimed parts that wait for an older SMS to their phone (`due_after`) go back to the queue,
        due with it (the same time: one claim takes them in their order), their attempt not counted;
        in one write. Also those kept for a full link that give their turn up (`gateway.claimahead`)."""
        now = self.store.clock()
        for part, due in parts:
            if due > now:  # the SMS after it wait for it in turn
                self.order.wait_for(part, due)

        def release() -> None:
            for part, due in parts:
                if not self.late.settled_meanwhile(part.id):  # else a late answer settled it
                    self.store.queue.release(part.id, delay=None, count=False, due=due)

        if event is not None:  # None: said already (a part held for a late answer, at each look)
            self._say_put_back(event, [part.id for part, _delay in parts])
        await self.write(None, release)

    def _say_put_back(self, event: str, ids: list[int]) -> None:
        """`event` at INFO for the parts it is new for; a part put back behind an older SMS again
        (each second while that one's links are down) at DEBUG: 1,144 INFO lines in 20 minutes were
        said of one long SMS whose phone's link was down."""
        if event != BEHIND_SUSPECT:
            log.info(event, parts=ids)
            return
        said = self.said_behind
        new = [part_id for part_id in ids if part_id not in said]
        if new:
            log.info(event, parts=new)
        if len(new) < len(ids):
            log.debug(event, parts=[part_id for part_id in ids if part_id in said], again=True)
        for part_id in new:
            said[part_id] = None
        while len(said) > SAID_BEHIND_KEPT:  # parts that ended without a word here (a cancel, a restart)
            said.popitem(last=False)

    def _another_up(self, part: ClaimedPart, name: str, tried: Collection[str] = ()) -> bool:
        """Whether a link other than `name` and those `tried` that may take the part is up (not for a
        part that waits for its own link, `ClaimedPart.via`)."""
        if part.via in self.links:
            return False
        others = [n for n in self.router.candidates(part.destination) if n != name and n not in tried]
        return any(self.links[n].state == LinkState.ACTIVE for n in others if n in self.links)

    def _unrouted(self, part: ClaimedPart) -> bool:
        return part.via not in self.links and not self.router.serves(part.destination)

    def forget(self, part_id: int) -> str | None:
        self.avoid.pop(part_id, None)
        self.said_behind.pop(part_id, None)
        self.forget_losses(part_id)
        return self.late.forget(part_id)  # `LateAnswers.forget`
