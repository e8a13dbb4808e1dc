"""The wall clock stepped forward while a link is up and a backlog goes out through it.

The step moves the validities of the SMS accepted before it (`gateway.housekeeping.check_clock`); the
parts the dispatcher has claimed ahead are held in memory with the validity read at their claim, so
it takes the moved one too, or they end "validity period expired" when a window place frees, and the
SMSC is given an end the clock has passed. Runs the daemon against a fake SMSC over TCP, on a wall
clock the test steps and the real boot time.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway import housekeeping as housekeeping_module
from smsc.outage import boottime
from smsc.simulator.smpp_server import SmppSession
from smsc.simulator.submitted import SubmittedSms
from smsc.smpp.pdu import read_smpp_time
from tests.conftest import mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_clock_step import DAY, on_a_stepping_clock, to


class GatedSMSC(HappySMSC):
    """Takes every submit and answers none until `open()`: the window stays full, and the parts
    claimed ahead of it wait in the dispatcher's memory while the clock steps."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.held: list[tuple[SmppSession, int, SubmittedSms]] | None = []
        self.arrived: list[SubmittedSms] = []

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.arrived.append(sms)
        if self.held is not None:
            self.held.append((session, seq, sms))  # not awaited here: the session reads on meanwhile
            return
        await super().on_submit(session, seq, sms)

    async def open(self) -> None:
        held, self.held = self.held or [], None
        for session, seq, sms in held:
            await super().on_submit(session, seq, sms)


def waiting(conn: sqlite3.Connection) -> int:
    """Parts not yet sent, expired or otherwise ended."""
    row = conn.execute("SELECT count(*) FROM parts WHERE state IN ('queued', 'deferred', 'active')")
    return int(row.fetchone()[0])


def time_left(text: str) -> float:
    """An SMPP relative validity (YYMMDDhhmmss000R), as the gateway sends it, in seconds."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = read_smpp_time(text, start) if text.endswith("R") else None
    assert end is not None, text
    return (end - start).total_seconds()


async def test_parts_claimed_ahead_when_the_clock_steps_forward_are_sent_once_not_expired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 40 SMS to one link with a window of 10: 10 on the wire unanswered, 20 claimed ahead in the
    # dispatcher's memory, the rest queued; then the clock steps 2 days ahead (no boot time passed).
    # The queued ones got their validities moved, the 20 held kept theirs and expired one by one as
    # the answers freed places, each bounced "validity period expired", never sent.
    monkeypatch.setattr(housekeeping_module, "EXPIRY_INTERVAL", 0.3)  # an expiry pass at every look
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.3)  # the step is seen soon
    clock, smsc_port, cfg = on_a_stepping_clock(tmp_path)
    numbers = [to(f"60114{i:04d}") for i in range(40)]
    with capture_logs() as logs:
        async with GatedSMSC(port=smsc_port) as smsc, running_gateway(cfg, clock, boottime) as gw:
            assert (await gw.send(mail(numbers, "Sent across the step"), numbers)).error is None
            dispatcher = gw.daemon.dispatcher
            await gw.until(lambda: len(smsc.arrived) == 10 and len(dispatcher._ready) > 0, timeout=10)
            assert "queued" in gw.states(), gw.states()  # a backlog beyond what is claimed ahead
            await asyncio.sleep(0.7)  # the housekeeping has a reading from before the step
            clock.offset += 2 * DAY
            await gw.until(lambda: any(e["event"] == "clock.stepped_forward" for e in logs), timeout=10)
            await asyncio.sleep(0.7)  # expiry passes after the step
            await smsc.open()
            await gw.until(lambda: not waiting(gw.store.db.conn), timeout=20)
            ended = dict(gw.store.db.conn.execute("SELECT state, count(*) FROM parts GROUP BY state"))
    assert "expired" not in ended, ended
    assert sorted(Counter(s.destination for s in smsc.received).values()) == [1] * 40  # each sent once
    assert len(smsc.arrived) == 40
    later = [sms.validity for sms in smsc.arrived[10:]]  # sent after the step: their day's validity left,
    assert all(time_left(v) > 3600 for v in later), later  # not an end passed (the shortest, 1 s)


async def test_parts_going_out_when_the_clock_steps_forward_are_held_until_the_step_is_handled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 100 SMS through a window of 10 answered after 0.5 s each, the clock stepped 2 days ahead
    # mid-backlog. Until the clock check's next look handles the step (its validities moved), the
    # answers kept freeing places, and each part popped for one was found past its validity on the
    # stepped clock and expired, never sent: a few dozen of them.
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 3.0)  # a look only now and then
    clock, smsc_port, cfg = on_a_stepping_clock(tmp_path)
    numbers = [to(f"60115{i:04d}") for i in range(100)]
    with capture_logs() as logs:
        async with (
            HappySMSC(port=smsc_port, response_delay=0.5) as smsc,
            running_gateway(cfg, clock, boottime) as gw,
        ):
            for half in (numbers[:50], numbers[50:]):
                assert (await gw.send(mail(half, "Sent as the clock steps"), half)).error is None
            await smsc.wait_for(20, timeout=20)
            clock.offset += 2 * DAY
            await gw.until(lambda: not waiting(gw.store.db.conn), timeout=30)
            ended = dict(gw.store.db.conn.execute("SELECT state, count(*) FROM parts GROUP BY state"))
    assert "expired" not in ended, ended
    assert any(e["event"] == "clock.stepped_forward" for e in logs)
    assert sorted(Counter(s.destination for s in smsc.received).values()) == [1] * 100  # each sent once


async def test_parts_claimed_ahead_when_the_link_drops_just_after_a_step_forward_are_not_expired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The clock stepped 2 days ahead and the link dropped before the clock check's next look: the
    # parts claimed ahead went back to the queue, each found past its validity on the stepped clock
    # and expired, never sent, although the check moved the validities of the others a moment later.
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 3.0)  # a look only now and then
    # The fake SMSC sends no receipt of a submit lost with its session: it goes again at the rebind.
    clock, smsc_port, cfg = on_a_stepping_clock(tmp_path, smsc_extra="lost_submit_settle_seconds = 0")
    numbers = [to(f"60116{i:04d}") for i in range(40)]
    with capture_logs() as logs:
        async with running_gateway(cfg, clock, boottime) as gw:
            async with GatedSMSC(port=smsc_port) as gated:
                assert (await gw.send(mail(numbers, "Sent across the step"), numbers)).error is None
                dispatcher = gw.daemon.dispatcher
                await gw.until(lambda: len(gated.arrived) == 10 and len(dispatcher._ready) > 0, timeout=10)
                clock.offset += 2 * DAY
                gated.drop_all()
                await gw.until(lambda: not dispatcher._ready, timeout=10)
            await gw.until(lambda: any(e["event"] == "clock.stepped_forward" for e in logs), timeout=10)
            async with HappySMSC(port=smsc_port) as smsc:
                await gw.until(lambda: not waiting(gw.store.db.conn), timeout=30)
            ended = dict(gw.store.db.conn.execute("SELECT state, count(*) FROM parts GROUP BY state"))
    assert "expired" not in ended, ended
    # The 10 on the wire, unanswered when it dropped, may go again (possible duplicates); none is lost.
    sent = {sms.destination[-9:] for sms in [*gated.arrived, *smsc.received]}
    assert sent == {number[:9] for number in numbers}
