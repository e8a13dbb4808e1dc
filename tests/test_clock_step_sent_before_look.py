"""When the SMS sent in the last seconds before a step back of the wall clock went, after the step.

Send times of those seconds move back with the step, so that an SMS sent after it reads later; one sent
after the step, before the clock check's look found it, carries the stepped clock already and keeps its
time. Runs the daemon against an SMPP SMSC over TCP and a real relay, on a wall clock the test steps and
the real boot time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway import housekeeping as housekeeping_module
from gateway.housekeeping import Housekeeping
from gateway.store.sendlog import KEPT, SendLog
from smsc.outage import boottime
from smsc.simulator.smpp_server import SmppSession
from smsc.simulator.submitted import SubmittedSms
from tests.conftest import Sink, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_clock_step import on_a_stepping_clock, to

PHONE = "601117001"
BOB = "bob@acme.example"
STEP = 60.0


class HoldingSMSC(HappySMSC):
    """Answers every submit at once but those whose text says "held", until `answer_held()`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.held: list[tuple[SmppSession, int, SubmittedSms]] = []

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if "held" in sms.text:
            self.held.append((session, seq, sms))
            return
        await super().on_submit(session, seq, sms)

    async def answer_held(self) -> None:
        held, self.held = self.held, []
        for session, seq, sms in held:
            await super().on_submit(session, seq, sms)


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


async def test_an_answer_goes_to_the_sms_sent_between_a_step_back_and_its_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bob texts the phone; Anna's SMS to it is accepted and submitted, the SMSC's answer comes just
    # after NTP steps the clock back a minute, before the clock check looks. Its send time, stamped on
    # the stepped clock, was moved back with Bob's: it read older than his, and the phone's answer to
    # Anna went to Bob, quoting his SMS.
    looks = counting_looks(monkeypatch)
    relay = free_port()
    clock, smsc_port, cfg = on_a_stepping_clock(tmp_path, relay_port=relay)
    sink = Sink()
    with capture_logs() as logs:
        async with (
            HoldingSMSC(port=smsc_port) as smsc,
            smtp_sink(relay, sink),
            running_gateway(cfg, clock, boottime) as gw,
        ):
            await bob_sent(gw)
            assert (await gw.send(mail(to(PHONE), "Anna's offer, held"))).error is None
            await smsc.wait_until(lambda: len(smsc.held) == 1)
            seen = len(looks)
            await gw.until(lambda: len(looks) > seen)  # a look has just been: the next is seconds away
            seen = len(looks)
            clock.offset -= STEP
            await smsc.answer_held()
            await gw.until(lambda: submitted(gw, "Anna's offer, held"))
            assert len(looks) == seen, "the look came before the part went: nothing tested"
            await gw.until(lambda: any(e["event"] == "clock.stepped_back" for e in logs))
            times = went(gw)
            assert times["Bob's offer"] < times["Anna's offer, held"] < clock(), (times, clock())
            await asyncio.sleep(6.0)  # no phone answers an SMS within seconds of its going
            await smsc.inject_mo("48" + PHONE, "48100200300", "Yes please")
            await sink.wait(1)
    [(_mail_from, rcpts, raw)] = sink.messages
    assert rcpts == ["anna@acme.example"], (rcpts, raw[-400:])


def test_the_sends_no_look_forgets_are_bounded() -> None:
    # A process that sends without the clock check (no look ever forgets a send) kept every part id
    # it sent for as long as it ran. The count goes on; the oldest ids go.
    log = SendLog()
    for part_id in range(KEPT + 1):
        log.note(part_id)
    assert log.mark() == KEPT + 1
    assert len(log._ids) <= KEPT
    assert log._ids[-1] == KEPT
