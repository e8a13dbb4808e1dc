"""The wall clock stepped back (NTP at boot, an admin, a VM restored) while SMS and mail wait.

Next tries are stamped in wall-clock time; without a correction, everything waiting would stay
"not due" for as long as the step while new mail overtakes it. The housekeeping worker compares the
wall clock with the monotonic clock and moves the waits by the step (quiet-hours holds excepted:
they are wall-clock times by design). Times go through the daemon's injected clock. Steps forward
and their corrections, and MOs after a step, have modules of their own (test_clock_step_forward.py,
test_clock_step_mo.py), the helpers staying here.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway import housekeeping as housekeeping_module
from gateway.config import Config
from gateway.housekeeping import Housekeeping
from gateway.smtp.accept import accept
from gateway.store.db import Store
from smsc.outage import boottime
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_store import Clock, acceptance

HOUR = 3600.0
DAY = 24 * HOUR


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


class SteppingClock:
    """The gateway's wall clock: real time plus an offset the test steps; boot time runs on (`elapsed`)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def on_a_stepping_clock(tmp_path: Path, **config: Any) -> tuple[SteppingClock, int, Config]:
    """A wall clock the test steps, and the gateway's config for an SMSC port nothing listens on
    until the test starts its SMSC there: the link is down until the test says."""
    smsc_port = free_port()
    return SteppingClock(), smsc_port, make_config(tmp_path, smsc_port=smsc_port, **config)


class Monotonic:
    def __init__(self) -> None:
        self.t = 500.0

    def __call__(self) -> float:
        return self.t


def housekeeping(store: Store, monotonic: Monotonic) -> Housekeeping:
    unused: Any = None  # check_clock needs only the store and the clocks
    return Housekeeping(store, unused, unused, dict, Path("/nonexistent"), monotonic=monotonic)


def due_at(store: Store, part_id: int) -> tuple[float, float]:
    row = store.db.conn.execute("SELECT next_attempt_at, expires_at FROM parts WHERE id = ?", (part_id,))
    return row.fetchone()


async def test_sms_queued_before_a_step_back_go_when_the_smsc_comes_up(tmp_path: Path) -> None:
    # Three SMS wait for a link that is down; the clock steps back an hour; the SMSC comes up.
    # Stamped "due at 12:00" and read at 11:00, they waited an hour while newer mail overtook them.
    clock, smsc_port, cfg = on_a_stepping_clock(tmp_path)
    with capture_logs() as logs:
        async with running_gateway(cfg, clock, boottime) as gw:
            numbers = [to(f"60113000{i}") for i in range(1, 4)]
            assert (await gw.send(mail(numbers, "Queued before the step"), numbers)).error is None
            await asyncio.sleep(2.5)  # the housekeeping has a reading from before the step
            clock.offset -= HOUR
            async with HappySMSC(port=smsc_port) as smsc:
                await smsc.wait_for(3, timeout=10)
                assert (await gw.send(mail(to("601130005"), "New mail after the step"))).error is None
                await smsc.wait_for(4, timeout=10)
                texts = [s.text for s in smsc.received]
                assert texts == ["Queued before the step"] * 3 + ["New mail after the step"]
    steps = [e for e in logs if e["event"] == "clock.stepped_back"]
    assert len(steps) == 1 and HOUR - 5 < steps[0]["seconds"] < HOUR + 5
    assert steps[0]["parts"] == 3


async def test_sms_queued_before_a_step_forward_are_not_expired_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The link down, five SMS waiting, the clock stepped 2 days ahead (no time passed on the boot
    # clock): all five expired within 2 s, each with a DSN "validity period expired while no link
    # was up", and were never sent. Their validities move with the step; the SMSC gets them all.
    monkeypatch.setattr(housekeeping_module, "EXPIRY_INTERVAL", 0.5)  # an expiry pass at every look
    clock, smsc_port, cfg = on_a_stepping_clock(tmp_path)
    with capture_logs() as logs:
        async with running_gateway(cfg, clock, boottime) as gw:
            numbers = [to(f"60113100{i}") for i in range(1, 6)]
            assert (await gw.send(mail(numbers, "Queued before the step"), numbers)).error is None
            await asyncio.sleep(2.5)  # the housekeeping has a reading from before the step
            clock.offset += 2 * DAY
            await gw.until(lambda: any(e["event"] == "clock.stepped_forward" for e in logs))
            await asyncio.sleep(2.5)  # expiry passes after the step
            assert "expired" not in gw.states(), gw.states()
            async with HappySMSC(port=smsc_port) as smsc:
                await smsc.wait_for(5, timeout=10)
                assert [s.text for s in smsc.received] == ["Queued before the step"] * 5
    steps = [e for e in logs if e["event"] == "clock.stepped_forward"]
    assert len(steps) == 1 and 2 * DAY - 5 < steps[0]["seconds"] < 2 * DAY + 5 and steps[0]["parts"] == 5


async def test_a_queue_above_high_water_before_a_step_back_accepts_mail_again_once_it_drains(
    tmp_path: Path,
) -> None:
    clock, smsc_port, cfg = on_a_stepping_clock(tmp_path, queue_high_water=3)
    async with running_gateway(cfg, clock, boottime) as gw:
        numbers = [to(f"60113000{i}") for i in range(1, 4)]
        assert (await gw.send(mail(numbers, "Fill the queue"), numbers)).error is None
        await gw.until(lambda: gw.daemon.dispatcher.backlog >= 3, timeout=5)
        res = await gw.send(mail(to("601130004"), "Above high water"))
        assert getattr(res.error, "smtp_code", None) == 451
        clock.offset -= HOUR
        async with HappySMSC(port=smsc_port) as smsc:
            await smsc.wait_for(3, timeout=10)
            await gw.until(lambda: gw.daemon.dispatcher.backlog == 0, timeout=10)
            assert (await gw.send(mail(to("601130005"), "After the step"))).error is None


async def test_a_step_back_moves_the_waits_and_validities_but_not_quiet_hours(tmp_path: Path) -> None:
    clock, mono = Clock(), Monotonic()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    await accept(store, acceptance(["+48601000001", "+48601000002"]))
    held = acceptance(["+48601000003"])
    held.messages[0].not_before = clock.t + 5 * HOUR  # quiet hours: held until 05:00 on the wall clock
    await accept(store, held)
    queued, deferred, quiet = (r[0] for r in store.db.conn.execute("SELECT id FROM parts ORDER BY id"))
    claimed = store.queue.claim_due(1)
    assert [p.id for p in claimed] == [queued]
    store.queue.release(queued, delay=1.0)  # no link up: back to the queue for a second
    (part,) = store.queue.claim_due(1)
    assert part.id == deferred
    store.queue.release(deferred, delay=600.0, count=True)  # backing off for 10 minutes
    retry = store.outbox.enqueue_mail("dsn", "", "anna@acme.example", b"x")
    store.outbox.claim_mail(1)
    store.outbox.finish_mail(retry, "queued", "421 try later", retry_in=300.0)
    before = {pid: due_at(store, pid) for pid in (queued, deferred, quiet)}
    mail_due = store.outbox.next_mail_due_at()
    store.db.serve()

    hk = housekeeping(store, mono)
    assert await hk.check_clock() == 0.0  # the first reading
    clock.t += 10.0
    mono.t += 10.0
    assert await hk.check_clock() == 0.0  # both ran on together
    clock.t += 1.0
    mono.t += 2.5
    assert await hk.check_clock() == 0.0  # 1.5 s: jitter and slewing, not a step
    mono.t += 2.5
    assert await hk.check_clock() == 0.0  # a clock standing still between two looks (a test's)
    clock.t += 30.0
    mono.t += 1.0
    assert await hk.check_clock() == 0.0  # forward: nothing moves (it may be time that passed)
    with capture_logs() as logs:
        clock.t += 2.0 - HOUR
        mono.t += 2.0
        assert await hk.check_clock() == pytest.approx(HOUR)
        assert await hk.check_clock() == 0.0  # found once
    assert [e["event"] for e in logs] == ["clock.stepped_back"]
    assert logs[0]["parts"] == 2 and logs[0]["mails"] == 1

    # The step back also undid the 29 s forward: validities of SMS accepted before it move by the rest.
    for pid in (queued, deferred):
        moved = (before[pid][0] - HOUR, before[pid][1] - HOUR + 29.0)
        assert due_at(store, pid) == pytest.approx(moved, abs=0.01)
    assert due_at(store, quiet) == before[quiet]  # still released at 05:00 by the wall clock
    assert store.outbox.next_mail_due_at() == pytest.approx(mail_due - HOUR)
    # Due as before the step: the part back after a second at once, the other in its 10 minutes
    # less the 43 s gone since on the clock.
    assert [p.id for p in await store.write(lambda: store.queue.claim_due(10))] == [queued]
    clock.t += 600.0
    assert [p.id for p in await store.write(lambda: store.queue.claim_due(10))] == [deferred]
    store.close()


async def test_a_quiet_hours_hold_keeps_its_hour_through_a_step_back_while_its_account_is_suspended(
    tmp_path: Path,
) -> None:
    # The suspension turned the quiet-hours hold into 'hold' ("held: the account is suspended"), which
    # the step moved like a retry's wait: resumed, the bulk SMS went at 07:00 inside quiet hours.
    clock, mono = Clock(), Monotonic()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    account = store.accounts.add_account("acme")
    held = acceptance(["+48601000003"])
    held.account_id = account.id
    held.messages[0].not_before = clock.t + 5 * HOUR  # quiet hours: held until 05:00 on the wall clock
    await accept(store, held)
    retrying = acceptance(["+48601000004"])
    retrying.account_id = account.id
    await accept(store, retrying)
    quiet, deferred = (r[0] for r in store.db.conn.execute("SELECT id FROM parts ORDER BY id"))
    (part,) = store.queue.claim_due(1)
    assert part.id == deferred
    store.queue.release(deferred, delay=600.0, count=True)  # backing off for 10 minutes
    assert store.policy.suspend_account(account.id, "too many failures") == 2
    before = {pid: due_at(store, pid) for pid in (quiet, deferred)}
    store.db.serve()
    hk = housekeeping(store, mono)
    assert await hk.check_clock() == 0.0
    clock.t += 2.0 - HOUR
    mono.t += 2.0
    assert await hk.check_clock() == pytest.approx(HOUR)
    assert due_at(store, quiet) == before[quiet]  # still released at 05:00 by the wall clock
    assert due_at(store, deferred) == pytest.approx((before[deferred][0] - HOUR, before[deferred][1] - HOUR))
    assert await store.write(lambda: store.policy.resume_account(account.id)) == 2
    assert due_at(store, quiet) == before[quiet]
    clock.t += 600.0
    assert [p.id for p in await store.write(lambda: store.queue.claim_due(10))] == [deferred]
    store.close()


async def test_a_step_back_while_the_database_cannot_be_written_is_moved_on_the_next_look(
    tmp_path: Path,
) -> None:
    clock, mono = Clock(), Monotonic()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    await accept(store, acceptance(["+48601000001"]))
    (part_id,) = (r[0] for r in store.db.conn.execute("SELECT id FROM parts"))
    before = due_at(store, part_id)
    store.db.serve()
    hk = housekeeping(store, mono)
    await hk.check_clock()
    clock.t += 2.0 - HOUR
    mono.t += 2.0
    queue = store.queue
    shift = queue.shift_for_clock_step

    def failing(*_: object) -> int:
        raise OSError(28, "No space left on device")

    queue.shift_for_clock_step = failing  # type: ignore[method-assign]
    with pytest.raises(OSError):
        await hk.check_clock()
    queue.shift_for_clock_step = shift  # type: ignore[method-assign]
    mono.t += 2.0
    clock.t += 2.0
    assert await hk.check_clock() == pytest.approx(HOUR)
    assert due_at(store, part_id) == pytest.approx((before[0] - HOUR, before[1] - HOUR))
    store.close()


async def step(hk: Housekeeping, clock: Clock, mono: Monotonic, seconds: float) -> float:
    """Ten seconds pass, in which the wall clock steps by `seconds` (positive: forward); the
    housekeeping then looks and says what it found."""
    clock.t += 10.0 + seconds
    mono.t += 10.0
    return await hk.check_clock()


async def looking(tmp_path: Path) -> tuple[Clock, Monotonic, Store, Housekeeping]:
    """A served store on an injected clock and the housekeeping that has had its first look."""
    clock, mono = Clock(), Monotonic()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    store.db.serve()
    hk = housekeeping(store, mono)
    await hk.check_clock()
    return clock, mono, store, hk


async def accepted(store: Store) -> int:
    """An SMS accepted now (validity an hour): its part's id."""
    await accept(store, acceptance(["+48601000001"]))
    return int(store.db.conn.execute("SELECT MAX(id) FROM parts").fetchone()[0])


def mo_times(store: Store, mo_id: int) -> tuple[float, float | None]:
    return store.db.conn.execute("SELECT received_at, acked_at FROM mo WHERE id = ?", (mo_id,)).fetchone()


async def received(store: Store, text: str) -> int:
    """A short MO received now: its row's id."""
    mo_id = await store.write(lambda: store.mo.record_mo("smsc", "+48601", "+48100", text, 0, None))
    assert mo_id is not None
    return mo_id


async def test_rows_stamped_between_a_step_back_and_the_look_keep_their_times(tmp_path: Path) -> None:
    # The housekeeping looks every few seconds: an SMS accepted, an MO received (or acknowledged)
    # and a mail queued between the step and that look carry the stepped clock already. Moved by
    # the step like the rows written before it, the SMS would expire an hour early, and the MO
    # would look an hour older than it is.
    clock, mono = Clock(), Monotonic()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    store.db.serve()
    old = await accepted(store)  # before the first look
    hk = housekeeping(store, mono)
    await hk.check_clock()
    before = await accepted(store)  # after the look, before the step
    early = await received(store, "Tak")
    clock.t += 1.0
    mono.t += 1.0
    was = {p: due_at(store, p) for p in (old, before)}
    early_at = mo_times(store, early)[0]
    clock.t += 1.0 - HOUR  # the step
    mono.t += 1.0
    after = await accepted(store)
    late = await received(store, "Nie")
    await store.write(lambda: store.mo.mark_acked([early, late], clock.t))
    mail = await store.write(lambda: store.outbox.enqueue_mail("dsn", "", "anna@acme.example", b"x"))
    now = {p: due_at(store, p) for p in (after,)}
    late_at = mo_times(store, late)[0]
    mail_at = store.db.conn.execute("SELECT next_attempt_at FROM outbox WHERE id = ?", (mail,)).fetchone()[0]
    acked = clock.t
    clock.t += 1.0
    mono.t += 1.0
    with capture_logs() as logs:
        assert await hk.check_clock() == pytest.approx(HOUR, abs=0.01)
    for p in (old, before):
        assert due_at(store, p) == pytest.approx((was[p][0] - HOUR, was[p][1] - HOUR), abs=0.01)
    assert due_at(store, after) == pytest.approx(now[after], abs=0.01)
    assert mo_times(store, early) == pytest.approx((early_at - HOUR, acked), abs=0.01)
    assert mo_times(store, late) == pytest.approx((late_at, acked), abs=0.01)
    assert store.outbox.next_mail_due_at() == pytest.approx(mail_at, abs=0.01)
    assert (logs[0]["parts"], logs[0]["mos"], logs[0]["mails"]) == (2, 1, 0)
    assert await store.write(store.queue.expire_due) == []
    store.close()


async def test_an_sms_waiting_for_its_report_ends_unreported_a_day_after_its_validity_after_a_step_back(
    tmp_path: Path,
) -> None:
    # The SMSC took the SMS and its report never comes: it ends `unreported` a day after its
    # validity. That validity was stamped on the clock before the step; left as it was, the SMS
    # would wait an hour more than a day (the length of the step).
    clock, mono, store, hk = await looking(tmp_path)
    part = await accepted(store)
    (claimed,) = await store.write(lambda: store.queue.claim_due(1))
    await store.write(lambda: store.queue.mark_submitted(claimed.id, "main", "x1"))
    expiry = due_at(store, part)[1]
    assert await step(hk, clock, mono, -HOUR) == pytest.approx(HOUR)
    assert due_at(store, part)[1] == pytest.approx(expiry - HOUR, abs=0.01)
    clock.t = expiry - HOUR + 24 * HOUR + 1.0  # a day after the validity, on the stepped clock
    (finished,) = await store.write(store.queue.expire_due)
    assert (finished.state, finished.reason) == ("unreported", "sent; the SMSC sent no delivery report")
    store.close()
