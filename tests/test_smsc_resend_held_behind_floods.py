"""A re-send after a submit went unanswered, while the SMSC's late answer to it waits in TCP behind a
flood of MOs that keeps the link's reader paused: the grace the dispatcher waits (`retry_after`) runs
on the clock, and the re-send went to the SMSC before the answer was read: the phone had the SMS
twice, the late answer only naming the duplicate. The part is now held (`smsc.lateholds.holding`)
until the answer is read, the session ends or the grace has run unpaused within the reader's bound,
and the dispatcher puts it back in the queue meanwhile, where a STOP recorded during the hold stops
it. The first tests play the dispatcher's part against the simulator's SMPP server over loopback
TCP; the last two have the daemon's dispatcher do it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.events import GatewayEvents
from smsc import backpressure
from smsc.base import Ack, InboundSms, LinkState, OutboundSms, Outcome, SubmitResult
from smsc.lateholds import LateHold, holding
from smsc.settings import LinkSettings
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from smsc.smpp import framing
from smsc.smpp.link import SmppLink
from smsc.stalls import ReadPause
from tests.conftest import Running, mail, running_gateway
from tests.fakes.events import EventRecorder
from tests.fakes.smsc import FakeSMSC
from tests.test_answers_behind_mo_floods import GatedEvents
from tests.test_late_answer import link_config, to

FLOOD = 3000  # MOs, some 200 kB: past what one read takes, and the 4 kB the link is let hold
GRACE = 3.0
PART = 7


class FloodThenLateSMSC(FakeSMSC):
    """Takes the first submit_sm without a word and, `answer_after` seconds later, writes `FLOOD` MOs
    and then its answer (an acceptance) on that session; every later submit is answered at once."""

    def __init__(self, answer_after: float, **kwargs: Any) -> None:
        super().__init__(resend_timeout=600.0, **kwargs)  # no MO goes out twice meanwhile
        self.answer_after = answer_after
        self.first: SmppSession | None = None

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if self.first is not None:
            await super().on_submit(session, seq, sms)
            return
        self.first = session
        verdict = self.core.on_submit(sms, session)
        self.server.record(sms)

        async def flood_then_answer() -> None:
            await asyncio.sleep(self.answer_after)
            for i in range(FLOOD):
                await session.send_mo("+48601000111", "+48100200300", f"mo {i}")
            session.answer_submit(seq, verdict)

        session.spawn(flood_then_answer())


def sms() -> OutboundSms:
    return OutboundSms(part_id=PART, source="+48100200300", destination="+48601123456", data_coding=0,
                       payload=b"hi", text="hi")  # fmt: skip


def settings(name: str, port: int) -> LinkSettings:
    # The flood pauses the reader well within the grace (3 s, from the response timeout at 1 s), and
    # the grace then runs out within the reader's bound (5 response timeouts) only past it.
    return LinkSettings(name=name, port=port, system_id="smsgw", response_timeout_seconds=1.0,
                        late_answer_grace_seconds=GRACE, reconnect_min_seconds=0.05,
                        reconnect_max_seconds=0.2)  # fmt: skip


@asynccontextmanager
async def links(
    monkeypatch: pytest.MonkeyPatch, *, two: bool = False
) -> AsyncIterator[tuple[FloodThenLateSMSC, GatedEvents, SmppLink, SmppLink]]:
    """The SMSC, the store of link "a" (stuck until its gate opens), link "a" and the link a re-send
    goes by: "a" itself, or "b" (another bind of the same SMSC, its store not stuck) with `two`."""
    monkeypatch.setattr(backpressure, "HELD_LIMIT", 4096)
    # Answered past the response timeout: it goes unanswered before the flood pauses the reader.
    async with FloodThenLateSMSC(answer_after=1.2) as smsc:
        events = GatedEvents()
        a = SmppLink(settings("a", smsc.port), password="secret")
        b = SmppLink(settings("b", smsc.port), password="secret") if two else a
        other = EventRecorder()
        await a.start(events)
        if b is not a:
            await b.start(other)
        try:
            await events.wait_until(lambda: a.state is LinkState.ACTIVE)
            await other.wait_for(lambda: b.state is LinkState.ACTIVE)
            yield smsc, events, a, b
        finally:
            events.gate.set()
            for link in {a, b}:
                await link.stop(drain=False)


async def unanswered_then_paused(a: SmppLink) -> SubmitResult:
    """The dispatcher's part: the submit goes unanswered, the grace it says is waited out; by then the
    SMSC's answer waits behind the MOs the paused reader left in TCP, and the part is held."""
    first = await a.submit(sms())
    assert first.outcome is Outcome.UNANSWERED and first.late is not None, first
    await asyncio.sleep(first.retry_after)
    conn = a._conn
    assert conn is not None
    await until(lambda: conn.pause.paused)
    assert not first.late.done()
    assert holding(PART)  # on the clock its grace is over: before, it went again now
    return first


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_the_part_is_held_until_its_late_answer_behind_the_flood_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with links(monkeypatch) as (smsc, events, a, _b):
        first = await unanswered_then_paused(a)
        assert first.late is not None
        events.gate.set()  # the store takes the MOs again: the reader reads on, to the answer
        late = await asyncio.wait_for(first.late, 10)
        assert not holding(PART)
        await events.wait_until(lambda: len(events.delivered) == FLOOD, timeout=10)
        assert a._conn is not None and a.state is LinkState.ACTIVE
    assert late is not None and late.outcome is Outcome.ACCEPTED and late.message_id, late
    assert [s.text for s in smsc.received] == ["hi"]


async def test_the_hold_ends_with_the_session_that_could_bring_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The link stops (its store still stuck): its answer dies with the session, nothing more can come.
    async with links(monkeypatch) as (_smsc, _events, a, _b):
        first = await unanswered_then_paused(a)
        assert first.late is not None
        await a.stop(drain=False)
        assert await asyncio.wait_for(first.late, 10) is None
        assert not holding(PART)


async def test_the_hold_ends_when_the_reader_stays_paused_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The store stays stuck: the grace is credited the reader's pause up to its bound (five response
    # timeouts), then the part may go. The session itself stays: no request of its waits.
    async with links(monkeypatch) as (_smsc, _events, a, _b):
        conn = a._conn
        await unanswered_then_paused(a)  # held past its grace on the clock
        await until(lambda: not holding(PART), timeout=20)
        assert conn is not None and conn.pause.paused and a._conn is conn


def stuck_store(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """The daemon's MO commits stuck (a slow disk) until the event returned is set."""
    monkeypatch.setattr(backpressure, "HELD_LIMIT", 4096)
    gate = asyncio.Event()
    take = GatewayEvents.on_deliver

    async def stuck(self: GatewayEvents, link: str, sms: InboundSms) -> Ack:
        await gate.wait()
        return await take(self, link, sms)

    monkeypatch.setattr(GatewayEvents, "on_deliver", stuck)
    return gate


@asynccontextmanager
async def held_in_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smsc: FakeSMSC, text: str
) -> AsyncIterator[tuple[Running, list[dict[str, Any]]]]:
    """The daemon against `smsc` (its first submit unanswered, then a flood), its MO commits stuck
    until the dispatcher has put the mail's part back held once; then the store takes MOs again."""
    async with held_and_stuck(tmp_path, monkeypatch, smsc, text) as (gw, logs, gate):
        gate.set()
        yield gw, logs


@asynccontextmanager
async def held_and_stuck(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smsc: FakeSMSC, text: str
) -> AsyncIterator[tuple[Running, list[dict[str, Any]], asyncio.Event]]:
    """As `held_in_daemon`, the store left stuck: it takes MOs again once the test sets the gate."""
    gate = stuck_store(monkeypatch)
    # The reader stands paused from the flood on: through the grace (3 s, the store stuck) and then
    # while the store commits what it held and reads on to the answer. With five response timeouts
    # of credit (5 s) a loaded machine's commits overran it, the hold ran out and the SMS went twice
    # (the bound's doing, tested above, not the dispatcher's): a wider bound here.
    monkeypatch.setattr(framing, "FLOOD_CREDIT", 30)
    cfg = link_config(tmp_path, smsc.port, response_timeout_seconds=1.0, late_answer_grace_seconds=GRACE)
    with capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            await gw.send(mail(to("601123456"), text))
            await gw.until(lambda: any(e["event"] == "mt.resend_held" for e in logs), timeout=20)
            yield gw, logs, gate


async def test_the_daemon_sends_the_sms_once_when_its_late_answer_comes_behind_a_flood(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past its grace the dispatcher finds the part held and puts it back, again and again; the late
    # acceptance, read once the store takes MOs again, settles it.
    async with FloodThenLateSMSC(answer_after=1.2) as smsc:
        async with held_in_daemon(tmp_path, monkeypatch, smsc, "Once only") as (gw, logs):
            await gw.until(lambda: gw.states() == ["delivered"])
            db = gw.store.db.conn
            unmatched = db.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone()[0]
    assert [s.text for s in smsc.received if s.text == "Once only"] == ["Once only"]
    assert unmatched == 0  # the second copy's receipt, before
    assert not [e for e in logs if e["event"] == "mt.possible_duplicate"]
    assert len([e for e in logs if e["event"] == "mt.resend_held"]) == 1  # once a hold, not each look


class FloodNoAnswerSMSC(FakeSMSC):
    """Never answers the first submit_sm; `flood_after` seconds later writes a STOP from its phone
    (with `stop_first`, as by default), then a flood of MOs from another phone. Later submits are
    answered at once."""

    def __init__(self, flood_after: float, *, stop_first: bool = True, **kwargs: Any) -> None:
        super().__init__(resend_timeout=600.0, **kwargs)  # no MO goes out twice meanwhile
        self.flood_after = flood_after
        self.stop_first = stop_first
        self.first: SmppSession | None = None

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if self.first is not None:
            await super().on_submit(session, seq, sms)
            return
        self.first = session
        self.core.on_submit(sms, session)
        self.server.record(sms)

        async def flood() -> None:
            await asyncio.sleep(self.flood_after)
            if self.stop_first:
                await session.send_mo("+48601123456", "+48100200300", "STOP")
            for i in range(FLOOD):
                await session.send_mo("+48601000111", "+48100200300", f"mo {i}")

        session.spawn(flood())


async def test_a_stop_that_comes_during_the_hold_stops_the_resend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The answer never comes; the phone's STOP, first in the flood, is recorded while the part is
    # held. Held in the link, the re-send went to the SMSC after the STOP once the hold ran out.
    async with FloodNoAnswerSMSC(flood_after=1.2) as smsc:
        async with held_in_daemon(tmp_path, monkeypatch, smsc, "After STOP?") as (gw, _logs):
            await gw.until(lambda: gw.states() == ["failed"], timeout=30)
    assert [s.text for s in smsc.received if s.text == "After STOP?"] == ["After STOP?"]


async def test_a_newer_hold_of_the_part_does_not_hide_one_still_holding() -> None:
    # Sent again unanswered by another link whose reader never paused: the newer hold replaced the
    # first, still waiting behind its paused reader, and the part went a third time.
    loop = asyncio.get_running_loop()
    paused, reading = ReadPause(loop), ReadPause(loop)
    first = LateHold(loop, PART, GRACE, paused)
    second = LateHold(loop, PART, GRACE, reading)
    try:
        paused.begin()  # the first link's reader stands still behind a flood
        assert holding(PART) is first
        first.end()  # its answer read
        assert holding(PART) is None  # the second's reader never stood still: nothing holds
    finally:
        paused.end()
        first.end()
        second.end()
