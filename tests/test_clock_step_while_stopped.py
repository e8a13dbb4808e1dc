"""The wall clock stepped while the daemon was stopped (an admin corrects a clock that was behind and
starts it again; a crash-restart during an NTP sync).

The clock check measured a step only within one run: the first look of a start took its reading
as the first, so a step forward of 2 days made while stopped expired every SMS queued (accepted with
250) at once, bounced "validity period expired while no link ... was up" before the link bound,
and a step back made them wait the whole step. The check's reading is kept in the store and seeds
the next start's (`gateway.clocksteps.KeptReading`) within one boot. Real SMTP listener, the SMSC
simulator over TCP, a real SQLite file; the wall clock injected, boot time the real one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.clocksteps import KeptReading
from gateway.store.clockstep import Marks, Reading, save_reading, saved_reading
from gateway.store.db import Store
from smsc.outage import boottime
from tests.conftest import config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_account_show import CLI
from tests.test_clock_step import DAY, HOUR, on_a_stepping_clock, to
from tests.test_store import Clock


async def test_sms_queued_before_a_step_forward_made_while_stopped_are_sent(tmp_path: Path) -> None:
    clock, smsc_port, cfg = on_a_stepping_clock(tmp_path)
    numbers = [to(f"60114000{i}") for i in range(1, 4)]
    async with running_gateway(cfg, clock, boottime) as gw:  # no link up: the SMS wait
        assert (await gw.send(mail(numbers, "Queued before the stop"), numbers)).error is None
        await asyncio.sleep(2.5)  # a look of the clock check kept its reading with these SMS
    clock.offset += 2 * DAY  # the admin corrects a clock 2 days behind, then starts the daemon
    with capture_logs() as logs:
        async with HappySMSC(port=smsc_port) as smsc, running_gateway(cfg, clock, boottime) as gw:
            await smsc.wait_for(3, timeout=15)
            assert [s.text for s in smsc.received] == ["Queued before the stop"] * 3
            assert "expired" not in gw.states(), gw.states()
    steps = [e for e in logs if e["event"] == "clock.stepped_forward"]
    assert len(steps) == 1 and 2 * DAY - 60 < steps[0]["seconds"] < 2 * DAY + 5, steps
    assert steps[0]["parts"] == 3


async def test_sms_queued_before_a_step_back_made_while_stopped_are_due_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Stamped due at 12:00 and read at 11:00 after the step, they waited an hour (said to be
    # "held for quiet hours" by status and queue list) while new mail overtook them.
    clock, smsc_port, cfg = on_a_stepping_clock(tmp_path)
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=smsc_port))
    numbers = [to(f"60114100{i}") for i in range(1, 3)]
    async with running_gateway(cfg, clock, boottime) as gw:
        assert (await gw.send(mail(numbers, "Queued before the stop"), numbers)).error is None
        await asyncio.sleep(2.5)
    clock.offset -= HOUR
    with capture_logs() as logs:
        async with running_gateway(cfg, clock, boottime) as gw:
            await gw.until(lambda: any(e["event"] == "clock.stepped_back" for e in logs), timeout=15)
            assert gw.store.admin.quiet_held() == (0, None)  # nothing waits for a later hour
            code, listed, err = await asyncio.to_thread(CLI(path, capsys), "queue", "list")
            assert code == 0 and len(listed) >= 2 and "quiet hours" not in "\n".join(listed), (listed, err)
            # The start was read on the stepped clock: not taken back an hour, as if the daemon had
            # run that long (it holds back joining the segments the SMSC kept through the downtime).
            assert gw.daemon.housekeeping.started_at > clock() - 60
            async with HappySMSC(port=smsc_port) as smsc:
                await smsc.wait_for(2, timeout=15)
                assert (await gw.send(mail(to("601141009"), "After the start"))).error is None
                await smsc.wait_for(3, timeout=15)
                assert [s.text for s in smsc.received] == ["Queued before the stop"] * 2 + ["After the start"]
    steps = [e for e in logs if e["event"] == "clock.stepped_back"]
    assert len(steps) == 1 and HOUR - 5 < steps[0]["seconds"] < HOUR + 60 and steps[0]["parts"] == 2


def test_a_reading_from_another_boot_seeds_only_a_clock_certainly_behind(tmp_path: Path) -> None:
    # Boot time starts again at a boot: a wall clock ahead of the last run's may be the time the
    # machine was off, and is taken for it; one behind it was stepped back by at least the difference.
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    reading = Reading(1_000_000.0, 50.0, Marks(7, 3, 2), ((Marks(5, 1, 1), 30.0),))
    with store.db.conn:
        save_reading(store.db.conn, "boot-a", reading)
    assert saved_reading(store.db.conn) == ("boot-a", reading)
    assert KeptReading("boot-a", 5.0).load(store.db.conn, 1_000_000.0 + 2 * DAY, 60.0) == reading
    assert KeptReading("boot-b", 5.0).load(store.db.conn, 1_000_000.0 + 2 * DAY, 9.0) is None
    behind = KeptReading("boot-b", 5.0).load(store.db.conn, 1_000_000.0 - HOUR, 9.0)
    assert behind == Reading(1_000_000.0, 9.0, Marks(7, 3, 2))  # as if no time passed since
    assert KeptReading(None, 5.0).load(store.db.conn, 1_000_000.0 - HOUR, 9.0) is None  # a test's clock
    store.close()
