"""Moves parts from the store to the SMSC links: claim, route, pace, submit, record the outcome.

Each link has one `smsc.pacing.LinkPacer` (window, rate, throttle pauses); drivers only report outcomes.
Parts are claimed ahead of the windows of the links that are up (`gateway.claimahead`, in batches), so that
a place freed by an answer is given the next part in the same step, with no claim or other write in between;
a part with no usable link goes straight back to the queue without counting an attempt, there to wait
unclaimed until a link of its route comes up (`gateway.linkwaits`), and parts claimed ahead go back the
same way when the dispatcher stops, or when a busy link kept them while another had room
(`claimahead.KeptParts`: no head-of-line blocking). A part of an account suspended after its claim is not
sent: the dispatcher holds it as the suspension holds the waiting ones (`PolicyRepo.hold_claimed`), so that
the resume sends it once. Each submit, from its window place to its answer, is `gateway.submits`'; what
each answer makes of the part is written by `gateway.outcomes`; anything unexpected puts the part on `hold`
for a human, as Postfix's hold queue does.

A submit that went out and was not answered in time is not sent again at once: see `gateway.late_answers`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import replace

import structlog

from gateway import handoffs
from gateway.backgroundwrites import BackgroundWrites
from gateway.claimahead import ClaimAhead, KeptParts
from gateway.claims import OPTED_OUT, claimer
from gateway.late_answers import LateAnswers
from gateway.linkchoice import LinkChoice
from gateway.linkwaits import Unparking
from gateway.outcomes import OutcomeRecorder
from gateway.queuedepth import Backlog, QueueDepth
from gateway.retryafter import RETRY_BASE_SECONDS
from gateway.routing import Router
from gateway.store.db import ClaimedPart, Finished, Store
from gateway.submits import Submits
from gateway.supervisor import beat
from gateway.suspensions import SuspensionWatch
from smsc.base import SmscLink
from smsc.pacing import LinkPacer

log = structlog.get_logger(__name__)


_NONE: frozenset[int] = frozenset()
_NO_LINKS: frozenset[str] = frozenset()


class Dispatcher(Submits):
    def __init__(
        self,
        store: Store,
        links: dict[str, tuple[SmscLink, LinkPacer]],
        router: Router,
        on_finished: Callable[[list[Finished]], None],
        *,
        clock: Callable[[], float] = time.time,
        retry_base: float = RETRY_BASE_SECONDS,
        queue_high_water: int = 200_000,
    ) -> None:
        self.store = store
        self.router = router
        self.on_finished = on_finished
        self.clock = clock
        self.links = {name: link for name, (link, _pacer) in links.items()}
        self.pacers = {name: pacer for name, (_link, pacer) in links.items()}
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._background = BackgroundWrites(self._tasks, on_failure=self._wake.set)  # a failure ends the run
        # submit tasks by the part they carry, so that a stop can tell those still waiting for pacing
        self._parts: dict[asyncio.Task[None], ClaimedPart] = {}
        self._avoid: dict[int, set[str]] = {}  # part id -> links that just failed it (failover)
        choosing = (router, self.links, self.pacers, store.queue.link_taken, clock)
        self.choice = LinkChoice(*choosing, siblings=lambda: store.queue.siblings)  # public: long SMS waits
        self._ready: deque[ClaimedPart] = deque()  # claimed ahead, waiting for a window place
        self._windows = ClaimAhead(self.links, self.pacers)  # how many to claim ahead of them
        self._kept = KeptParts()  # those kept for a full link while another has room (`claimahead`)
        self._drained = False  # the last claim found no more due parts; claim again when woken
        self._woken = 0  # wakes so far, so that one during a claim is not taken for "drained"
        self._pacing: set[int] = set()  # claimed parts not yet handed to their link
        self.handoffs = handoffs.watch(str(store.db.path))  # when each went: the answer wait's
        self._suspensions = SuspensionWatch(store)  # and opt-outs, cancels
        self._stops: set[str] | None = None  # STOPs recorded while a claim is under way
        self._moves = 0  # the validities the store moved (`validities_moved`) so far
        # A step forward of the wall clock the clock check has yet to handle (`gateway.clocksteps`).
        self.step_unseen: Callable[[], bool] = lambda: False
        self._late = LateAnswers(store, on_finished, pacing=self._pacing, avoid=self._avoid)
        self._outcomes = OutcomeRecorder(
            store, on_finished, self.choice, late=self._late, avoid=self._avoid, retry_base=retry_base
        )
        self._stopping = False
        # How many times a link has come up (`link_up`), and how many of those the last look saw: when
        # one comes up, the parts that wait for a link (`gateway.linkwaits`) and one of them may take are
        # due in the next claims.
        self._ups = self._ups_seen = 0
        self._unparking = Unparking(store, self.choice.could_go)
        # Monotonic: after the wall clock stepped back, a depth counted by the wall clock would stay
        # frozen for the whole step (new mail refused as "queue full").
        self._depth = QueueDepth(store.db.path, queue_high_water)

    @property
    def answers_unwritten(self) -> bool:
        """An SMSC's answer (or a part's end) is known but not yet on disk."""
        return self._outcomes.writing > 0

    def handed_unwritten(self) -> set[int]:
        """Parts handed to a link whose answer and hold were refused: `active`, yet maybe at the SMSC."""
        return self._outcomes.on_wire

    def wake(self) -> None:
        """Something may have come due (mail queued, a link up, a part released): claim again."""
        self._woken += 1
        self._drained = False
        self._wake.set()

    def link_up(self) -> None:
        """A link came up (`events.on_link_up`): counted, for the next look. The links up compared
        between two looks miss one that went down and came up again between them, and the parts no
        link up could take meanwhile stayed waiting for it with it up."""
        self._ups += 1
        self.wake()

    @property
    def backlog(self) -> int:
        """Parts waiting to go, as last counted (`gateway.queuedepth`)."""
        return self._depth.value

    @property
    def queue(self) -> Backlog:
        """The last count and whose mail the high-water mark refuses by it."""
        return self._depth.backlog

    async def run(self) -> None:
        self._background.started()
        await self._outcomes.write(None, lambda: self.choice.learn_renamed(self.store))  # before a claim
        # After a crash the claim that was to make them due may not have run, or been rolled back after
        # the walk moved on past them: looked at again, as if a link had come up.
        self._ups_seen = self._ups - 1
        try:
            while not self._stopping:
                beat()
                self._background.raise_failed()
                now = self.clock()
                self._depth.refresh()
                self._look_for_links_up()
                self._fill()
                limit = self._windows.room(len(self._ready))
                if limit > 0 and not self._drained:
                    self._wake.clear()
                    woken = self._woken
                    self._stops = set()
                    moves = self._moves
                    claim = claimer(self.store, self._end_claimed, limit, now)
                    claim = self._unparking.claiming(now, limit, claim)
                    taken, claimed = await self.store.write(claim, replayable=True)
                    if moves != self._moves:  # read before the clock check's write, maybe
                        claimed = self._reread(claimed)
                    # Nothing more is due until something is queued, released or comes due (or the parts
                    # waiting for a link are looked at further).
                    self._drained = taken < limit and woken == self._woken and self._unparking.after is None
                    self._outcomes.order.claimed(claimed)  # the SMS after them to their phones go now (F5)
                    self._ready.extend(self._outcomes.order.suspects_last(claimed))
                    self._pacing.update(part.id for part in claimed)
                    self.handoffs.claimed(claimed, now)
                    self._late.claimed(claimed)  # an earlier submit an SMSC may have: logged when sent
                    for number in self._stops:  # a STOP recorded while the claim was on its way
                        self.opted_out(number)
                    self._stops = None
                    self._fill()
                    if not self._drained:
                        await asyncio.sleep(0)  # more may be due; let the submits go first
                        continue
                if self._windows.capacity() == 0:
                    # No link up: nothing is claimed until one comes up, which wakes the dispatcher. By
                    # the due time of parts due already it looked again every 10 ms for as long as
                    # the links stayed down (a read of the queue each time).
                    timeout = 1.0
                else:
                    due = self.store.queue.next_due_at()
                    timeout = 1.0 if due is None else min(max(due - self.clock(), 0.01), 1.0)
                    if self._windows.free() == 0:
                        timeout = min(timeout, 0.2)
                if not await self._wait(timeout) and self._drained:
                    # A part may have come due (or been made due by another process): claimed if one
                    # has. Claimed each second regardless, an idle gateway wrote a transaction a second.
                    due = self.store.queue.next_due_at() if self._windows.capacity() else None
                    self._drained = due is None or due > self.clock()
        finally:
            if not self._stopping:
                # A crash: the parts claimed ahead stay `active` until the requeue of orphans that
                # precedes the restart (which waits for the submits in flight); none may go now.
                self._pacing.difference_update(part.id for part in self._ready)
                self._late.not_sent(part.id for part in self._ready)
                self._ready.clear()

    def _look_for_links_up(self) -> None:
        """Note whether a link came up since the last look (`link_up`'s count: a link that went down
        and came up again between two looks is counted too): the next claim makes due the parts waiting
        for a link that one may take (`gateway.linkwaits`), and claims them in the same write."""
        if self._ups != self._ups_seen:
            self._unparking.came_up(self.clock())
            self._drained = False  # what it makes due is claimed at once
        self._ups_seen = self._ups

    async def _wait(self, timeout: float) -> bool:
        """Whether a wake came before the timeout."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            self._wake.clear()
        return True

    def _fill(self) -> None:
        """Give every free window place a part claimed ahead, now: called when an answer frees a
        place, so the next submit goes out in the same step, with no write or claim before it."""
        if self._stopping or not self._ready:
            return
        self._withhold_stopped()  # before anything of a just-suspended account goes
        now = self.clock()
        unsendable: list[ClaimedPart] = []
        if self._windows.capacity() == 0:  # no link is up: back to the queue
            unsendable.extend(self._ready)
            self._ready.clear()
        kept: list[ClaimedPart] = []
        later: list[tuple[ClaimedPart, float]] = []  # with when they are due again
        while self._ready and self._windows.free() > 0:
            part = self._ready.popleft()
            if part.expires_at <= now:
                if self.step_unseen():  # its validity may move with the step: kept until the check
                    self._ready.appendleft(part)
                    break
                unsendable.append(part)
                continue
            if (due := self._outcomes.order.due_after(part, now)) is not None:
                later.append((part, due))  # an older SMS to its phone is not due yet: it goes after it (F5)
                continue
            if (move := self.choice.moving(part)) is not None:
                self._move(part, *move)
            elif (name := self.choice.pick(part, self._avoid.get(part.id, _NO_LINKS))) is not None:
                self._start(name, part)
            elif self.choice.routable(part):
                kept.append(part)  # its links are full; it keeps its turn
            else:
                unsendable.append(part)
        if kept and not self._ready and not self._drained and self._windows.free() > 0:
            # Another link up has free places none of them can use, and due parts wait behind them.
            kept, back = self._kept.overtaken(kept, self._windows, now)
            if back:
                at = self.store.clock()
                back_at = [(p, self._outcomes.order.handed_back(p, wait, at)) for p, wait in back]
                self._pacing.difference_update(part.id for part, _wait in back)
                self._late.not_sent(part.id for part, _wait in back)
                self._background(self._outcomes.put_back(back_at, event="mt.overtaken"), "overtaken")
        self._ready.extendleft(reversed(kept))
        if unsendable:
            self._pacing.difference_update(part.id for part in unsendable)
            # Its links down as the clock stepped ahead, none ends expired before the check moved it.
            at = float("-inf") if self.step_unseen() else now
            self._background(self._outcomes.settle_unsendable(unsendable, at), "settle_unsendable")
        if later:
            self._pacing.difference_update(part.id for part, _wait in later)
            self._late.not_sent(part.id for part, _wait in later)
            self._background(self._outcomes.put_back(later), "put_back")
        if len(self._ready) < self._windows.capacity() and not self._drained:
            self._wake.set()  # time for the next batch, while this one is being sent

    def _on_wire(self, part: ClaimedPart) -> Callable[[], None]:
        return self.handoffs.handing(part, self.clock)  # the phone may have it once its submit is written

    def _submitted(self, task: asyncio.Task[None]) -> None:
        self.handoffs.ended(self._parts.get(task), self._late.unanswered)
        super()._submitted(task)

    def _withhold_stopped(self) -> frozenset[int] | set[int]:
        """Take back the claimed parts not yet sent that an admin's change since the last look stops
        (`SuspensionWatch.stops`): of an account suspended, held as the suspension held its waiting
        parts; to a number opted out, ended as the claim ends them; cancelled. Returns their ids."""
        if not self._pacing:
            return _NONE
        waiting = [*self._ready, *(p for p in self._parts.values() if p.id in self._pacing)]
        stops = self._suspensions.stops(waiting)
        if stops is None:
            return _NONE
        ids = stops.ids()
        self._take_back(ids)
        ended = self._outcomes.write(None, lambda: stops.end(self.store, self._end_claimed))
        self._background(ended, "withhold_stopped")
        self.wake()
        return ids

    def opted_out(self, number: str) -> None:
        """A STOP from `number` was just recorded: its parts claimed ahead and not yet sent end as
        the claim ends those it finds opted out (R-2.4); they would otherwise have gone after it."""
        if self._stops is not None:
            self._stops.add(number)  # the claim under way may bring more of its parts
        waiting = [*self._ready, *(p for p in self._parts.values() if p.id in self._pacing)]
        stopped = {part.id: part for part in waiting if part.destination == number}
        if not stopped:
            return
        self._take_back(stopped.keys())
        log.info("mt.opted_out", parts=sorted(stopped))
        parts = list(stopped.values())
        ended = self._outcomes.write(None, lambda: self._end_claimed(parts, "failed", OPTED_OUT))
        self._background(ended, "opted_out")

    def validities_moved(self) -> None:
        """The clock check moved the validities of waiting parts with a step (`Housekeeping.check_clock`),
        the claimed ones' too: those not yet handed to a link take theirs from the store again. With
        the validity read at their claim, a step forward of 2 days expired every part claimed ahead
        as its window place freed ("validity period expired", never sent), and a part that went was
        given the SMSC an end its clock had passed. Called on the loop, after the write."""
        self._moves += 1  # and a claim under way reads them again when it returns
        self._ready = deque(self._reread(list(self._ready)))
        pacing = {task: part for task, part in self._parts.items() if part.id in self._pacing}
        fresh = {part.id: part for part in self._reread(list(pacing.values()))}
        for task, part in pacing.items():
            self._parts[task] = fresh[part.id]  # `_submit` hands its link this copy
        self._wake.set()  # those held for the check (`step_unseen`) go now

    def _reread(self, parts: list[ClaimedPart]) -> list[ClaimedPart]:
        """The parts with their validities as the store has them now (a part it no longer has as it
        was claimed keeps its own: what settled it says what becomes of it)."""
        if not parts:
            return parts
        ids = json.dumps([part.id for part in parts])
        sql = "SELECT id, expires_at FROM parts WHERE id IN (SELECT value FROM json_each(?))"
        stored: dict[int, float] = dict(self.store.db.conn.execute(sql, (ids,)).fetchall())
        return [replace(part, expires_at=stored.get(part.id, part.expires_at)) for part in parts]

    def _take_back(self, ids: AbstractSet[int]) -> None:
        """Claimed parts that must not go after all: out of the ready queue, pacing waits cancelled."""
        self._ready = deque(part for part in self._ready if part.id not in ids)
        current = asyncio.current_task()
        for task, part in list(self._parts.items()):
            if part.id in ids and task is not current:
                task.cancel()  # still waiting for its pacing: it never reaches `_go`
        self._pacing.difference_update(ids)
        for pid in ids:
            self._avoid.pop(pid, None)

    def _move(self, part: ClaimedPart, link: str, waited: float) -> None:
        """Its long SMS goes again whole by another link (`gateway.longsms`), no part of the old one."""
        mid = part.message_id
        held = [part, *self._ready, *(p for p in self._parts.values() if p.id in self._pacing)]
        self._take_back(ids := {p.id for p in held if p.message_id == mid})
        self._late.not_sent(ids)
        again = self.choice.send_again  # or not, a part of it held (`gateway.longsms`)
        self._background(self._outcomes.write(None, lambda: again(self.store, mid, link, waited)), "move")
        self.wake()

    def _end_claimed(self, parts: list[ClaimedPart], state: str, reason: str) -> None:
        """Inside a store write: claimed parts that will not be sent end together (their phone said
        STOP, R-2.4; an admin cancelled them), their senders told."""
        self.on_finished(self._outcomes.final_all(parts, state, reason))

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; give in-flight submits `timeout` to be answered (the daemon gives the links'
        response timeout: a part given up earlier stays `active` and is sent again by the next start
        although the SMSC took it), then leave them for recovery."""
        self._stopping = True
        self._wake.set()
        # A submit still waiting for its pacing (a throttled link, a rate of a few per second) has
        # not reached the SMSC: it goes back to the queue now instead of holding the stop.
        waiting = [task for task, part in self._parts.items() if part.id in self._pacing]
        unsent = [self._parts[task] for task in waiting]
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()  # an answer still retrying its write: kept in a side file, below
            await asyncio.gather(*pending, return_exceptions=True)
        await self._outcomes.unwritten.keep()  # not sent again by the next start (`gateway.answerjournal`)
        ready, self._ready = unsent + list(self._ready), deque()
        if ready:  # claimed ahead and never sent: back to the queue as they were
            self._pacing.difference_update(part.id for part in ready)
            queue, ids = self.store.queue, [part.id for part in ready]
            try:
                await self.store.write(lambda: queue.requeue_unsent(ids))
            except Exception:  # they stay `active`; the next start puts them back
                log.exception("dispatcher.put_back_failed", parts=len(ready))
        await self._depth.close()
        handoffs.unwatch(str(self.store.db.path), self.handoffs)

    async def end_late_answers(self, timeout: Callable[[], float]) -> None:
        await self._late.end(timeout)  # after the links' unbind: answers read until then settle (F10)

    def possible_duplicates(self, link: str) -> int:
        """Parts sent again since start that an SMSC may have had before (`LateAnswers.resent`)."""
        return self._late.resent[link]
