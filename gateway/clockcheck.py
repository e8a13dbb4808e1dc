"""The clock check: the watch for the wall clock stepping, and the moves of what the store stamped on it.

The housekeeping worker looks every few seconds (`Housekeeping`, which runs it before the expiry: validities
move with a step); its state (the last reading, the steps forward remembered, the daemon's start) is kept
here, on the worker, so that the dispatcher's `StepWatch` and the expiry read the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import structlog

from billing_reports import rebill
from billing_reports.monthly import Month
from gateway import stepmoves
from gateway.clocksteps import KeptReading, StepWatch, seam
from gateway.store.clockstep import (
    ClockStep,
    Marks,
    Reading,
    first_after,
    left_ahead,
    read_marks,
)
from gateway.store.writehold import Hold
from gateway.supervisor import beat

if TYPE_CHECKING:
    from gateway.notifier import Notifier
    from gateway.store.db import Store

log = structlog.get_logger("gateway.housekeeping")  # the lines' logger as before

# A wall clock off its last reading plus the boot time since by more than this was stepped (NTP at
# boot, an admin, a VM restored); NTP's slewing and timer jitter stay far below it.
# Above STATUS_INTERVAL, so that a clock standing still (a test's frozen clock) is not taken for one
# stepping back at every look; a smaller step costs waiting parts at most these seconds.
CLOCK_STEP_SECONDS = 5.0
# Steps forward remembered for a step back to correct: more uncorrected ones than this in one run
# are a clock gone wild, and only the latest matter to what is still waiting.
_AHEAD_KEPT = 8


class ClockCheck:
    """The clock check's state and its look (`check_clock`), for the housekeeping worker."""

    def __init__(
        self, store: Store, notifier: Notifier, elapsed: Callable[[], float], boot: str | None
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.elapsed = elapsed
        self.steps = StepWatch(store.clock, self.elapsed, CLOCK_STEP_SECONDS)  # for the dispatcher
        # The last (wall, monotonic) reading and the highest row ids then, and the steps forward no
        # step back has corrected yet, oldest first: (the first row ids written after the step, its
        # seconds). Kept across a restart of the worker, and of the daemon in the store (`kept`), so
        # that a step during a pause, or while it was stopped, is still seen; only with real boot time.
        self.kept = KeptReading(boot, CLOCK_STEP_SECONDS)  # `boot`: the boot's id, None off boot time
        seed = self.kept.load(store.db.conn, store.clock(), self.elapsed())
        self._readings = (seed.wall, seed.elapsed, seed.marks) if seed else None
        self._ahead: tuple[tuple[Marks, float], ...] = seed.ahead if seed else ()
        self.steps.last = (seed.wall, seed.elapsed) if seed else None  # the dispatcher waits for the look
        # The ids before anything writes (`gateway.daemon`): later rows carry a step made while stopped.
        self._start = read_marks(store.db.conn) if seed else None
        # The daemon's start, kept likewise: the reassembly timeout counts from no earlier (`expire`).
        self.started_at, self._started = store.clock(), self.elapsed()
        # A step back's move cut short by a stop or crash: the first look finishes it (`_finish_move`),
        # its sends told from this run's first (a crash loses the record of those before it).
        self._moving, self._move_sends = stepmoves.load_plan(store.db.conn), 0

    async def check_clock(self, keep: bool = False, start: bool = False) -> float:
        """Catch the wall clock stepping, and move what the store stamped on it with a step back.

        Next tries and validities are stamped in wall-clock time, and so are MOs (the windows that
        look back from the clock: the SMSC's redelivery, the hourly mail limit per phone). After a
        step back of an hour, parts and mail waiting would not be due for an hour while new mail
        overtakes them, SMS would live an hour longer than their validity, and a phone's SMS sent
        again would be taken for the SMSC's copy of the first. Boot time does not step (`elapsed`),
        so the wall clock's expected reading is the last one plus the boot time since.

        Which rows a step came after is told by their ids (`gateway.store.clockstep`), read at
        every look: a row written between the step and this look already carries the stepped
        clock and is not moved, and the stored times, which earlier steps moved or left, are not
        compared with the clock's readings.

        A step forward is told from time that passed by the boot time, which runs on through a
        suspend: left as it was, it expired every SMS whose validity ended within it (a false
        "validity period expired": 5 SMS, accepted with 250 on a clock 2 days behind, bounced 2 s
        after NTP corrected it, never sent). Their validities move with it (`extend_validities`),
        so the end the SMSC is given (SMPP's absolute time, CIMD2's time left) is as far ahead of
        its clock as the sender was promised, never already past; waits end early, costing a try
        sooner. A VM paused or resumed from a saved state by its host counts no boot time either:
        the step its resume brings is taken for a clock that was behind, and its SMS live the pause
        beyond their validity: sent late rather than bounced as never sent. A step forward is
        remembered for the step back that corrects it, which moves the times that say when
        something happened (acceptance, MOs) by only what it undoes of the clock they were stamped
        on (`gateway.store.clockstep.ClockStep`), validities and waits by the whole step. The
        reading, and the steps remembered, are kept in the store for the next start (`kept`), in
        the write that moves the rows for a step, else once a minute, or now with `keep` (a stop's
        last look: the next start places no row of this run by its time).

        A step back's chunks (`_finish_move`) are left by a stop's last look (`keep`) to the next
        start, and by the start's first look (`start`), made before anything listens, to the worker's
        looks: finished there, a move cut short by a crash held SMTP, the links and the panel shut for
        as long as it took (tens of seconds for a month, near systemd's start timeout). Only a new
        step back found by that look finishes a pending move first: its plan would take the pending
        one's place. Returns the step back."""
        store = self.store
        if self._moving is not None and not keep and (not start or self._stepped_back()):
            await self._finish_move()
        # Read together, with no await between: rows up to these ids were stamped before this reading.
        wall, mono, marks = store.clock(), self.elapsed(), read_marks(store.db.conn)
        sent = store.queue.sends.mark()  # and the parts sent by then (`gateway.store.sendlog`)
        last = self._readings
        step = 0.0 if last is None else last[0] + (mono - last[1]) - wall
        earlier, later, between = marks, marks, 0.0
        if last is not None:  # the rows a step may have come after, and the time that places them
            earlier, (later, between) = last[2], seam(last[0], wall, step, marks, self._start)
        if last is not None and step < -CLOCK_STEP_SECONDS:
            after = first_after(store.db.conn, earlier, later, False, between)
            ahead = (*self._ahead, (after, -step))[-_AHEAD_KEPT:]

            # The earliest the stepped clock can have read: at the last look's moment. A row stamped on it
            # in the seconds before this look reads from there on, and is kept as after the step.
            since = wall - (mono - last[1])

            def extend() -> int:
                self.kept.save(store.db.conn, Reading(wall, mono, marks, ahead))
                return stepmoves.shift_forward(store, -step, after.messages, wall, since)

            parts = await store.write(extend)
            self._ahead = ahead
            log.warning("clock.stepped_forward", seconds=round(-step, 3), parts=parts)
        elif last is not None and step > CLOCK_STEP_SECONDS:
            ahead = self._ahead
            config = getattr(self.notifier, "config", None)
            billed_again: list[Month] = []

            def shift() -> tuple[int, int, stepmoves.MovePlan]:
                # The rows after the step are found in the write that moves the rest: one written
                # after this look, before the write, came after the step too (up to `later`).
                after = first_after(store.db.conn, earlier, later, True, between)
                went = store.queue.sends.after_step(store.db.conn, sent, between, self._start is not None)
                moved = ClockStep(step, after, ahead, went)
                if config is not None:  # before the MOs move: which cross a billed month's end
                    billed_again[:] = rebill.stepped_back(store, ZoneInfo(config.gateway.timezone), moved)
                left = left_ahead(ahead, step, CLOCK_STEP_SECONDS)
                self.kept.save(store.db.conn, Reading(wall, mono, marks, left))
                return stepmoves.shift_back(store, moved)

            # One write for what the dispatcher and the outbox act on, and the plan of the rest: a failed
            # one leaves the last reading, so the next look finds the step again; nothing but this
            # object and the reading kept in the same write record the step, and the object changes
            # only once the write did. The rest moves in chunks at the end of this look (`_finish_move`).
            parts, mails, plan = await store.write(shift)
            self._moving = None if plan.done() else plan
            self._move_sends = sent
            for month in billed_again:  # its file went out without what the step brought back into it
                log.warning("billing.month_to_bill_again", month=str(month), clock_back_seconds=round(step))
            # On the clock's new reading, like the MOs' times; a start read after a step made while
            # the daemon was stopped is on it already (it does not read as the kept reading's clock).
            on_old = abs(last[0] + self._started - last[1] - self.started_at) < CLOCK_STEP_SECONDS
            if self._started <= last[1] or on_old:
                self.started_at -= step
            undone = sum(forward for _, forward in ahead)
            self._ahead = left_ahead(ahead, step, CLOCK_STEP_SECONDS)
            said = {"seconds": round(step, 3), "parts": parts, "mails": mails}
            said |= {"undoes_forward": round(min(undone, step), 3)} if undone else {}
        if last is not None and abs(step) > CLOCK_STEP_SECONDS:
            self.steps.handled(step, between, self._start is not None)  # claimed ahead: read before the write
        elif keep or (self._start is None and self.kept.due(wall)):  # no start waits: the worker's keeps it
            await self.kept.keep(store, Reading(wall, mono, marks, self._ahead))
        self._readings, self.steps.last, self._start = (wall, mono, marks), (wall, mono), None
        store.queue.sends.looked(sent)
        if last is not None and step > CLOCK_STEP_SECONDS:  # the dispatcher told: now the rest, in chunks
            # Not in a stop's last look (the stop would wait for it; the next start finishes it), nor in
            # a start's first look (the listeners wait for it; the worker's next look finishes it).
            left = keep or start
            sms, mos = await self._finish_move() if not left else (0, 0)
            log.warning("clock.stepped_back", **said, sms=sms, mos=mos, **({"moving": True} if left else {}))
        return step if step > CLOCK_STEP_SECONDS else 0.0

    def _stepped_back(self) -> bool:
        """Whether the clock reads a step back since the last reading (as the look will find it)."""
        last = self._readings
        return (
            last is not None
            and last[0] + (self.elapsed() - last[1]) - self.store.clock() > CLOCK_STEP_SECONDS
        )

    async def _finish_move(self) -> tuple[int, int]:
        """The chunks of a step back's move (`stepmoves.move_chunk`), each a write of its own, the loop
        free between them; how many SMS and MOs moved. A failed write leaves the plan where the last
        one put it (in the store and here): the next look goes on from there."""
        store, sms, mos, size = self.store, 0, 0, stepmoves.ChunkSize()
        while (plan := self._moving) is not None:
            sent, hold = store.queue.sends.since(self._move_sends), Hold()
            chunk = store.db.timed(partial(stepmoves.move_chunk, store, plan, sent, size), hold)
            plan, moved, received = await store.write(chunk)
            size.took(hold.seconds)  # the loop's time for it, not the fsync's nor the queue's before it
            self._moving = None if plan.done() else plan
            sms, mos = sms + moved, mos + received
            beat()  # a step of 30 days moves for half a minute: the worker is not stalled
            await asyncio.sleep(0)
        return sms, mos
