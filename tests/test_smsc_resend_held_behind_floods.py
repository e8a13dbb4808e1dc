"""A re-send after a submit went unanswered, while the SMSC's late answer to it waits in TCP behind a
flood of MOs that keeps the link's reader paused: the grace the dispatcher waits (`retry_after`) runs
on the clock, and the re-send went to the SMSC before the answer was read: the phone had the SMS
twice, the late answer only naming the duplicate. The link now holds such a re-send until the answer
is read (an acceptance answers it as unsent, nothing written), the session ends or the grace has run
unpaused within the reader's bound (`smsc.lateholds`). Each test plays the dispatcher's part (send,
UNANSWERED, wait `retry_after`, send again) against the simulator's SMPP server over loopback TCP,
and the last has the daemon's dispatcher do it."""

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
from smsc.settings import LinkSettings
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from smsc.smpp.link import SmppLink
from tests.conftest import mail, running_gateway
from tests.fakes.events import EventRecorder
from tests.fakes.smsc import FakeSMSC
from tests.test_answers_behind_mo_floods import GatedEvents
from tests.test_late_answer import link_config, to

FLOOD = 3000  # MOs, some 200 kB: past what one read takes, and the 4 kB the link is let hold


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
    return OutboundSms(part_id=7, source="+48100200300", destination="+48601123456", data_coding=0,
                       payload=b"hi", text="hi")  # fmt: skip


def settings(name: str, port: int) -> LinkSettings:
    # The grace runs out while the reader is paused behind the flood, well within its bound (5 s).
    return LinkSettings(name=name, port=port, system_id="smsgw", response_timeout_seconds=1.0,
                        late_answer_grace_seconds=1.0, reconnect_min_seconds=0.05,
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
    SMSC's answer waits behind the MOs the paused reader left in TCP."""
    first = await a.submit(sms())
    assert first.outcome is Outcome.UNANSWERED and first.late is not None, first
    await asyncio.sleep(first.retry_after)
    conn = a._conn
    assert conn is not None
    await until(lambda: conn.pause.paused)
    assert not first.late.done()
    return first


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_a_resend_waits_for_the_late_answer_behind_the_flood_and_is_not_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with links(monkeypatch) as (smsc, events, a, _b):
        first = await unanswered_then_paused(a)
        assert first.late is not None
        again = a.send(sms())
        asyncio.get_running_loop().call_later(0.5, events.gate.set)  # the store takes the MOs again
        resent = await asyncio.wait_for(again, 10)
        late = await asyncio.wait_for(first.late, 10)
        await events.wait_until(lambda: len(events.delivered) == FLOOD, timeout=10)
        assert a._conn is not None and a.state is LinkState.ACTIVE
    assert (resent.outcome, resent.unsent) == (Outcome.TEMPORARY, True), resent
    assert late is not None and late.outcome is Outcome.ACCEPTED and late.message_id, late
    assert [s.text for s in smsc.received] == ["hi"]  # once on the SMSC, once on the phone


async def test_a_resend_by_another_link_waits_for_the_late_answer_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The dispatcher sends it again by another link first (the one that left it unanswered goes last).
    async with links(monkeypatch, two=True) as (smsc, events, a, b):
        first = await unanswered_then_paused(a)
        assert first.late is not None
        again = b.send(sms())
        asyncio.get_running_loop().call_later(0.5, events.gate.set)
        resent = await asyncio.wait_for(again, 10)
        late = await asyncio.wait_for(first.late, 10)
    assert (resent.outcome, resent.unsent) == (Outcome.TEMPORARY, True), resent
    assert late is not None and late.outcome is Outcome.ACCEPTED, late
    assert [s.text for s in smsc.received] == ["hi"]


async def test_a_held_resend_goes_once_the_session_with_the_late_answer_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Link "a" stops (its store still stuck): its answer dies with the session, nothing more can
    # come, and the re-send goes.
    async with links(monkeypatch, two=True) as (smsc, _events, a, b):
        first = await unanswered_then_paused(a)
        assert first.late is not None
        again = b.send(sms())
        await asyncio.sleep(0.2)
        assert not again.done()  # held
        await a.stop(drain=False)
        resent = await asyncio.wait_for(again, 10)
        assert await asyncio.wait_for(first.late, 10) is None
    assert resent.outcome is Outcome.ACCEPTED, resent
    assert [s.text for s in smsc.received] == ["hi", "hi"]


async def test_a_held_resend_goes_when_the_reader_stays_paused_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The store stays stuck: the grace is credited the reader's pause up to its bound (five response
    # timeouts), then the re-send goes. The session itself stays: no request of its waits.
    async with links(monkeypatch, two=True) as (smsc, _events, a, b):
        conn = a._conn
        await unanswered_then_paused(a)
        resent = await asyncio.wait_for(b.send(sms()), 20)
        assert conn is not None and conn.pause.paused and a._conn is conn
    assert resent.outcome is Outcome.ACCEPTED, resent
    assert [s.text for s in smsc.received] == ["hi", "hi"]


async def test_the_daemon_sends_the_sms_once_when_its_late_answer_comes_behind_a_flood(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dispatcher claims the part again once its grace is over and hands it to the link, which
    # holds it; the late acceptance, read once the store takes MOs again, settles the part.
    monkeypatch.setattr(backpressure, "HELD_LIMIT", 4096)
    gate = asyncio.Event()
    take = GatewayEvents.on_deliver

    async def stuck(self: GatewayEvents, link: str, sms: InboundSms) -> Ack:
        await gate.wait()  # a store whose commits of MOs are stuck (a slow disk) until the gate opens
        return await take(self, link, sms)

    monkeypatch.setattr(GatewayEvents, "on_deliver", stuck)
    async with FloodThenLateSMSC(answer_after=1.2) as smsc:
        cfg = link_config(tmp_path, smsc.port, response_timeout_seconds=1.0, late_answer_grace_seconds=1.0)
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                await gw.send(mail(to("601123456"), "Once only"))
                db = gw.store.db.conn
                await gw.until(lambda: db.execute("SELECT attempts FROM parts").fetchone()[0] == 2)
                await asyncio.sleep(0.5)  # handed to the link by now: written at once, before the fix
                gate.set()
                await gw.until(lambda: gw.states() == ["delivered"])
                unmatched = db.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone()[0]
    assert [s.text for s in smsc.received if s.text == "Once only"] == ["Once only"]
    assert unmatched == 0  # the second copy's receipt, before
    # The re-send dropped was never written: no possible duplicate said or counted of it.
    said = [e for e in logs if e["event"] in ("mt.possible_duplicate", "smsc.resend_dropped")]
    assert [e["event"] for e in said] == ["smsc.resend_dropped"], said
