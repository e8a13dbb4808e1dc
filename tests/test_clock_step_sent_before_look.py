"""When the SMS sent in the last seconds before a step back of the wall clock went, after the step.

Send times of those seconds move back with the step, so that an SMS sent after it reads later. Runs
the daemon against an SMPP SMSC over TCP, on a wall clock the test steps and the real boot time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway import housekeeping as housekeeping_module
from gateway.housekeeping import Housekeeping
from smsc.outage import boottime
from tests.conftest import mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_clock_step import on_a_stepping_clock, to

PHONE = "601117001"
BOB = "bob@acme.example"
STEP = 60.0


def submitted(gw: Any, text: str) -> bool:
    row = gw.store.db.conn.execute(
        "SELECT 1 FROM parts WHERE text = ? AND submitted_at IS NOT NULL", (text,)
    ).fetchone()
    return row is not None


def went(gw: Any) -> dict[str, float]:
    return dict(gw.store.db.conn.execute("SELECT text, submitted_at FROM parts"))


def counting_looks(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The clock check's looks, a few seconds apart, each's step back in the list as it ends."""
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 3.0)  # a look only now and then
    looks: list[float] = []
    check = Housekeeping.check_clock

    async def counted(self: Housekeeping, keep: bool = False) -> float:
        step = await check(self, keep)
        looks.append(step)
        return step

    monkeypatch.setattr(Housekeeping, "check_clock", counted)
    return looks


async def bob_sent(gw: Any) -> None:
    """Bob, Anna's colleague, texts the phone, and the SMSC takes it."""
    await gw.store.write(lambda: gw.store.accounts.add_user(BOB, "acme"))
    bob = mail(to(PHONE), "Bob's offer")
    bob.replace_header("From", BOB)
    assert (await gw.send(bob)).error is None
    await gw.until(lambda: submitted(gw, "Bob's offer"))


async def test_a_send_time_of_the_last_seconds_before_a_step_back_moves_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The phone's only conversation, its SMS sent a moment before NTP steps the clock back a minute.
    # Its send time was left a minute ahead of the clock: the SMS whose conversation is the oldest kept
    # was read from a floor its own acceptance time, moved, fell just below (its conversation's time was
    # stamped a moment after it), and an SMS sent to the phone in the next minute read as sent before it.
    looks = counting_looks(monkeypatch)
    clock, smsc_port, cfg = on_a_stepping_clock(tmp_path)
    with capture_logs() as logs:
        async with HappySMSC(port=smsc_port), running_gateway(cfg, clock, boottime) as gw:
            await bob_sent(gw)
            seen = len(looks)
            await gw.until(lambda: len(looks) > seen)
            clock.offset -= STEP
            await gw.until(lambda: any(e["event"] == "clock.stepped_back" for e in logs))
            assert went(gw)["Bob's offer"] < clock(), (went(gw), clock())
