"""Throttling on SMPP links (RELIABILITY.md F6): the rate a throttled link drops to and wins back
(`smsc.pacing.LinkPacer`, on a hand-moved clock), and the whole gateway against a fake SMSC over
loopback that takes a few submits a second."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.cli.statuslinks import allowed
from smsc.base import Outcome
from smsc.logthrottle import LogThrottle
from smsc.pacing import LinkPacer
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from smsc.smpp.submits import OVERFLOW_READINGS, Submits
from tests.conftest import DOMAIN, mail, make_config, running_gateway
from tests.fakes.smsc import FakeSMSC, ThrottlingSMSC
from tests.test_pacing import FakeClock
from tests.test_smsc_link_defects import settings

# The behaviour promised, written out rather than imported: smsc.pacing.RATE_FLOOR.
RATE_FLOOR = 1.0


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


# --- the pacer's rate, on a hand-moved clock ------------------------------------------------------


async def test_a_throttle_halves_the_rate_and_lets_one_submit_out_after_the_pause() -> None:
    # The pause used to end in a full burst at the configured rate, which the SMSC refused again.
    clock = FakeClock()
    pacer = LinkPacer(10, 100, 1, clock=clock, sleep=clock.sleep)
    assert sum(pacer.try_ready() for _ in range(20)) == 10  # an idle link's burst: the window
    pacer.record(Outcome.THROTTLED)
    for _ in range(9):  # answers to the submits in flight when the first came back: no further halving
        pacer.record(Outcome.THROTTLED)
    assert pacer.rate == 50 and pacer.pause_left() == 1
    clock.now += 1
    assert [pacer.try_ready() for _ in range(3)] == [True, False, False]  # one submit, not a burst
    clock.now += 1.01 / 50
    assert pacer.try_ready()
    for _ in range(10):  # each throttle seen after its pause halves the rate again, down to the floor
        clock.now += pacer.pause_left()
        pacer.record(Outcome.THROTTLED)
    assert pacer.rate == RATE_FLOOR


async def test_clean_submits_win_the_rate_back_slowly_up_to_the_configured_rate() -> None:
    clock = FakeClock()
    pacer = LinkPacer(10, 100, 1, clock=clock, sleep=clock.sleep)
    for _ in range(8):  # 100 → 0.78, held at the floor of 1/s
        clock.now += pacer.pause_left()
        pacer.record(Outcome.THROTTLED)
    assert pacer.rate == RATE_FLOOR
    clock.now += pacer.pause_left()
    pacer.record(Outcome.ACCEPTED)  # at the end of the pause: nothing won back yet
    assert pacer.rate == RATE_FLOOR
    rates = []
    for _ in range(60):
        clock.now += 1
        pacer.record(Outcome.ACCEPTED)
        rates.append(pacer.rate)
    assert rates[0] == pytest.approx(1.1) and rates[9] == pytest.approx(1.1**10)  # 10 % a second
    assert rates[-1] == 100 and pacer.bucket.burst == 10  # the configured rate and burst, no more


async def test_a_pause_that_starts_while_a_submit_waits_for_its_token_holds_it() -> None:
    # The submit waiting for a token at the slowed rate must not go out in the middle of the pause.
    clock = FakeClock()

    async def throttled_meanwhile(seconds: float) -> None:
        await clock.sleep(seconds)
        if len(clock.slept) == 1:
            pacer.record(Outcome.THROTTLED)  # answered while the submit waited 1 s for its second

    pacer = LinkPacer(10, 2, 1, clock=clock, sleep=throttled_meanwhile)
    assert pacer.try_ready() and pacer.try_ready()
    await pacer.ready()
    # The wait for room in the second (2/s: a second after the first two), then the whole pause.
    assert clock.slept == [pytest.approx(1), pytest.approx(1)]


# --- the whole gateway against a SMSC that takes 10 submits a second --------------------------------


async def test_twenty_sms_at_ten_a_second_cost_fewer_throttled_answers_than_sms(tmp_path: Path) -> None:
    # Before: every pause ended in a full window, most of it refused; 40 SMS at 2/s cost ~950
    # throttled answers with this config's 50 ms pause (~140 with the default 1 s). The link now
    # slows down to what the SMSC takes; nothing fails and the queue drains.
    async with (
        ThrottlingSMSC(accept_per_second=10) as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw,
    ):
        numbers = [to(f"60112{i:04d}") for i in range(20)]
        await gw.send(mail(numbers, "Bulk notice"), numbers)
        await gw.until(lambda: gw.states().count("delivered") == 20, timeout=90)
        assert len({s.destination for s in smsc.received}) == 20
        assert smsc.throttled < 20, f"{smsc.throttled} throttled answers for 20 SMS"


class WindowOverflowSMSC(FakeSMSC):
    """Holds up to `window` submits for 50 ms each and answers one more at once with
    ESME_RSUBMITFAIL (0x45), as some SMSCs do instead of ESME_RTHROTTLED; `refuse` gets 0x45 always."""

    def __init__(self, window: int, refuse: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.window, self.refuse = window, refuse
        self.in_flight = self.overflowed = 0
        self.refused: Counter[str] = Counter()  # 0x45 answers by destination

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if self.in_flight >= self.window or sms.destination.endswith(self.refuse or "-"):
            self.overflowed += self.in_flight >= self.window
            self.refused[sms.destination] += 1
            session.answer_submit(seq, None, status=0x45)
            return
        self.in_flight += 1

        async def answer() -> None:
            await asyncio.sleep(0.05)
            self.in_flight -= 1
            await SmppSession.on_submit_sm(session, seq, sms)

        session.spawn(answer())


async def test_submit_failed_for_a_full_window_is_sent_again_not_failed(tmp_path: Path) -> None:
    # An SMSC whose window (3) is smaller than the link's (10) answers the overflow with 0x45: every
    # one of those SMS used to fail for good, and the sender got a bounce for a number that works.
    async with (
        WindowOverflowSMSC(window=3) as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw,
    ):
        numbers = [to(f"60113{i:04d}") for i in range(12)]
        await gw.send(mail(numbers, "Window notice"), numbers)
        await gw.until(
            lambda: sorted(set(gw.states())) in (["delivered"], ["delivered", "failed"]), timeout=60
        )
        assert gw.states() == ["delivered"] * 12
        assert smsc.overflowed > 0  # the window did overflow
        assert {s.destination[-9:] for s in smsc.received} == {n[:9] for n in numbers}


async def test_submit_failed_alone_on_the_wire_is_a_permanent_failure(tmp_path: Path) -> None:
    async with (
        WindowOverflowSMSC(window=3, refuse="99") as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw,
    ):
        await gw.send(mail(to("601130099"), "Alone"), [to("601130099")])
        await gw.until(lambda: gw.states() == ["failed"], timeout=20)
        error = gw.store.db.conn.execute("SELECT error FROM parts").fetchone()[0]
        assert "0x45" in error and smsc.overflowed == 0


def test_status_says_a_link_was_slowed_down_and_from_what() -> None:
    # `status` showed the configured rate as the link's maximum while it sent at a fraction of it.
    slowed = {"rate_limit": 12.5, "rate_configured": 100.0}
    assert allowed(slowed) == "12.5/s, slowed from 100/s after throttling"
    assert allowed({"rate_limit": 100.0, "rate_configured": 100.0}) == "100/s"


async def test_a_submit_refused_for_good_under_load_fails_after_a_few_readings(tmp_path: Path) -> None:
    # An SMSC refusing one number for good with 0x45 while others were on the wire: every answer
    # was read as a full window, so on a busy link the SMS went again for its whole validity and
    # each refusal paused the link and halved its rate. A few readings per part now; then it fails.
    # The rule on its own, with the connection's bookkeeping of unanswered submits (no peer needed
    # to keep one on the wire at each answer):
    closed = asyncio.Event()
    submits = Submits(settings("smpp", 1), closed, lambda _reason: None, LogThrottle(structlog.get_logger()))
    other = submits.expect(1, part=1)  # a submit of another part, still unanswered throughout
    outcomes = []
    for seq in range(2, 3 + OVERFLOW_READINGS):
        answer = submits.expect(seq, part=2)
        submits.on_resp(seq, 0x45, b"")
        outcomes.append((await answer).outcome)
    assert outcomes == [Outcome.THROTTLED] * OVERFLOW_READINGS + [Outcome.REJECTED]  # the part fails
    assert not other.done() and submits.overflowed == {}  # forgotten once it failed
    submits.close("test")
    # And end to end: the gateway against a fake SMSC refusing one number of a group mail.
    async with (
        WindowOverflowSMSC(window=100, refuse="99") as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw,
    ):
        numbers = [to("601130099")] + [to(f"60114{i:04d}") for i in range(40)]
        await gw.send(mail(numbers, "Busy link"), numbers)
        await gw.until(lambda: sorted(set(gw.states())) == ["delivered", "failed"], timeout=60)
        assert gw.states().count("failed") == 1 and smsc.refused["+48601130099"] <= OVERFLOW_READINGS + 1
