"""ESME_RMSGQFUL (0x14) said of one phone (its store-and-forward queue at the SMSC full) while the
SMSC takes every other SMS. Read as the SMSC's own queue full, a throttle, each time, that one phone
paused the link and halved its rate at every retry, for the SMS's whole validity: the link went at
1-2 SMS/s. A part's first 0x14 is still a throttle (protocols.md 2.8); its next, once others were
accepted since, is that part's temporary failure; with nothing else answered since, an uncounted
retry that leaves the link unpaused (`smsc.smpp.submits.QueueFull`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.config import parse_config
from smsc.base import Outcome, SubmitResult
from smsc.logthrottle import LogThrottle
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from smsc.smpp import submits
from smsc.smpp.submits import Submits
from tests.conftest import DOMAIN, Running, config_text, mail, make_config, running_gateway, smsc_link
from tests.fakes.smsc import FakeSMSC
from tests.test_smsc_link_defects import settings

ESME_RMSGQFUL = 0x14


class QueueFullSMSC(FakeSMSC):
    """Answers ESME_RMSGQFUL (or `status`) to every submit to a number ending in `full`; takes every
    other one."""

    def __init__(self, full: str, status: int = ESME_RMSGQFUL, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.full, self.status, self.refused = full, status, 0

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if sms.destination.endswith(self.full):
            self.refused += 1
            session.answer_submit(seq, None, status=self.status)
        else:
            await super().on_submit(session, seq, sms)


@asynccontextmanager
async def full_at_99(tmp_path: Path) -> AsyncIterator[tuple[QueueFullSMSC, Running]]:
    """The daemon on its one link to an SMSC whose phones ending in 99 have their queues full."""
    async with (
        QueueFullSMSC(full="99") as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw,
    ):
        yield smsc, gw


async def test_one_phones_full_queue_does_not_slow_the_link_for_the_others(tmp_path: Path) -> None:
    numbers = [f"601150099@{DOMAIN}"] + [f"60116{i:04d}@{DOMAIN}" for i in range(20)]
    async with full_at_99(tmp_path) as (smsc, gw):
        conn = gw.store.db.conn

        def delivered() -> int:
            return conn.execute("SELECT COUNT(*) FROM parts WHERE state = 'delivered'").fetchone()[0]

        await gw.send(mail(numbers, "Queue notice"), numbers)
        await gw.until(lambda: delivered() == 20 and smsc.refused >= 5, timeout=60)
        pacer = gw.daemon.dispatcher.pacers["main"]
        throttled = gw.daemon.dispatcher.links["main"].stats().throttled
        attempts, state = conn.execute(
            "SELECT attempts, state FROM parts WHERE destination LIKE '%99'"
        ).fetchone()
    # Its first 0x14 (and one more, should the part come back before another was accepted) paused
    # the link and halved its rate; none after: the rest are the part's own, counted, backing off.
    assert throttled <= 2 < smsc.refused, (throttled, smsc.refused)
    assert pacer.rate >= pacer.max_rate / 4, (pacer.rate, pacer.max_rate)
    assert attempts >= smsc.refused - throttled - 1 and state in ("queued", "deferred", "active"), state


async def test_a_phone_alone_on_an_idle_link_throttles_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing else to send: no other submit can be accepted between its 0x14s, and read as throttles
    # they took the idle link down to 1 SMS/s, the rate the next traffic met. Read as the phone's,
    # the same answers from an SMSC whose own queue is full (it cannot be told apart) counted
    # attempts, backed off to 15 minutes and put the SMS on hold in some 10 hours. So after its first
    # they are neither: retried uncounted, the link left unpaused; and once the queue empties, it goes.
    monkeypatch.setattr(submits, "UNSURE_FIRST_SECONDS", 0.05)
    async with full_at_99(tmp_path) as (smsc, gw):
        conn = gw.store.db.conn
        await gw.send(mail(f"601150099@{DOMAIN}", "Alone"), [f"601150099@{DOMAIN}"])
        await gw.until(lambda: smsc.refused >= 5, timeout=60)
        pacer = gw.daemon.dispatcher.pacers["main"]
        throttled = gw.daemon.dispatcher.links["main"].stats().throttled
        # A claim counts its attempt until the part is put back: one claimed now is not counted yet.
        counted = "SELECT attempts - (state = 'active') FROM parts"
        attempts, throttles = conn.execute(counted).fetchone()[0], pacer.throttles
        smsc.full = "no longer"
        await gw.until(lambda: conn.execute("SELECT state FROM parts").fetchone()[0] == "delivered")
    assert throttled == 1 and throttles <= 1, (throttled, throttles, smsc.refused)
    assert attempts == 0, attempts


async def test_a_full_phone_with_two_links_counts_no_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each link throttles its first; after that nothing else is answered on either meanwhile, so its
    # 0x14s are uncertain: retried uncounted, never on hold for "50 attempts failed".
    monkeypatch.setattr(submits, "UNSURE_FIRST_SECONDS", 0.05)
    async with QueueFullSMSC(full="99") as a, QueueFullSMSC(full="99") as b:
        text = config_text(tmp_path, smsc_port=a.port) + smsc_link("backup", b.port)
        async with running_gateway(parse_config(text, source="t", base_dir=tmp_path)) as gw:
            links = gw.daemon.dispatcher.links.values()
            await gw.until(lambda: all(link.state.value == "active" for link in links))
            await gw.send(mail(f"601150099@{DOMAIN}", "Both full"), [f"601150099@{DOMAIN}"])
            await gw.until(lambda: a.refused + b.refused >= 6, timeout=60)
            # A claim counts its attempt until the part is put back: one claimed now is not counted yet.
            counted = "SELECT state, attempts - (state = 'active') FROM parts"
            state, attempts = gw.store.db.conn.execute(counted).fetchone()
    assert state != "hold" and attempts == 0, (state, attempts, a.refused, b.refused)


async def test_the_rule_part_by_part() -> None:
    # With the connection's bookkeeping alone (no peer needed to order the answers): a part's next
    # 0x14 is the SMSC's queue (a throttle) only when other submits were throttled since its last and
    # none accepted; else it is that phone's, and stays so; any other answer forgets the part.
    submits = Submits(
        settings("smpp", 1), asyncio.Event(), lambda _reason: None, LogThrottle(structlog.get_logger())
    )

    async def answer(seq: int, part: int, status: int) -> Outcome:
        return (await answered(seq, part, status)).outcome

    async def answered(seq: int, part: int, status: int) -> SubmitResult:
        future = submits.expect(seq, part=part)
        submits.on_resp(seq, status, b"id\0")
        return await future

    assert await answer(1, 7, ESME_RMSGQFUL) is Outcome.THROTTLED  # its first
    assert await answer(2, 9, ESME_RMSGQFUL) is Outcome.THROTTLED  # another's first
    assert await answer(3, 7, ESME_RMSGQFUL) is Outcome.THROTTLED  # others refused too, none taken
    assert await answer(4, 8, 0) is Outcome.ACCEPTED
    assert await answer(5, 7, ESME_RMSGQFUL) is Outcome.TEMPORARY  # another was taken meanwhile
    assert await answer(6, 7, ESME_RMSGQFUL) is Outcome.TEMPORARY  # still that phone's
    future = submits.expect(7, part=7)
    submits.on_nack(7, ESME_RMSGQFUL)  # a generic_nack saying it is read alike
    assert (await future).outcome is Outcome.TEMPORARY
    assert await answer(8, 7, 0) is Outcome.ACCEPTED
    # Alone: refused twice with nothing else answered meanwhile (the one submit a pause lets out,
    # pause after pause, before any other could be accepted): the SMSC's queue or the phone's, it
    # cannot be told; retried uncounted after a wait that grows, until others are taken meanwhile.
    assert await answer(9, 10, ESME_RMSGQFUL) is Outcome.THROTTLED
    first, second = await answered(10, 10, ESME_RMSGQFUL), await answered(11, 10, ESME_RMSGQFUL)
    assert first.outcome is second.outcome is Outcome.TEMPORARY
    assert 0 < first.retry_after < second.retry_after, (first, second)
    assert await answer(12, 8, 0) is Outcome.ACCEPTED
    counted = await answered(13, 10, ESME_RMSGQFUL)
    assert counted.outcome is Outcome.TEMPORARY and not counted.retry_after  # the phone's now
    assert list(submits.queue_full.parts) == [9, 10]  # part 7 is forgotten once answered otherwise
    submits.close("test")


async def test_a_part_both_links_refuse_backs_off(tmp_path: Path) -> None:
    # Refused by one link, it fails over to the other at once; refused there too, it backs off. It
    # went straight back to the first instead, and again, and 50 attempts were spent in a second:
    # on hold, "50 attempts failed", for a temporary fault both links had (here ESME_RSYSERR).
    async with QueueFullSMSC(full="99", status=0x08) as a, QueueFullSMSC(full="99", status=0x08) as b:
        text = config_text(tmp_path, smsc_port=a.port) + smsc_link("backup", b.port)
        text = text.replace("retry_base_seconds = 0.2", "retry_base_seconds = 30")
        async with running_gateway(parse_config(text, source="t", base_dir=tmp_path)) as gw:
            links = gw.daemon.dispatcher.links.values()
            await gw.until(lambda: all(link.state.value == "active" for link in links))
            conn = gw.store.db.conn

            def part() -> tuple[str, int, float]:
                return conn.execute("SELECT state, attempts, next_attempt_at FROM parts").fetchone()

            await gw.send(mail(f"601150099@{DOMAIN}", "Both refuse"), [f"601150099@{DOMAIN}"])
            # Its back-off (30 s after the first attempt) shows as a next attempt well ahead.
            await gw.until(lambda: part()[0] == "hold" or part()[2] > gw.store.clock() + 10)
            state, attempts, _at = part()
    assert state != "hold" and attempts <= 3, (state, attempts, a.refused, b.refused)
    assert a.refused + b.refused <= 3, (a.refused, b.refused)
