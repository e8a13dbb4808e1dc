"""What the back-off of an SMS suspected of ending sessions (`gateway.outcomes`) must not break, over
real SMSCs on TCP (SMPP and CIMD2):

- order per phone (F5): a later SMS to the suspect's phone waits with it instead of going first;
- a held suspect that expires says its delivery is unknown (it went out several times), not "never sent";
- every send is an attempt, the parts lost behind the suspect too: attempts equal copies sent, so
  MAX_ATTEMPTS caps the copies a phone gets from an SMSC that drops every busy session;
- a session we end ourselves (a CIMD2 general error, SMPP's ESME_RINVBNDSTS) blames no submit.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

from gateway.config import parse_config
from gateway.retryafter import HOLD_AFTER_LOSSES
from gateway.store.db import Store
from gateway.store.partnotes import MAYBE_SENT_EXPIRED
from smsc.cimd2.packet import Op, P, Packet
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.cimd2 import PeerConnection, ScriptedSmsc
from tests.fakes.smsc import HeldSMSC
from tests.test_session_killer_sms import KILLER, POISON, PoisonSMSC, gateway_config, to

ESME_RINVBNDSTS = 0x04
SUSPECTED = "mt.session_killer_suspected"


async def cut_twice_then_answer(smsc: HeldSMSC, n: int) -> None:
    """The session is cut twice with `n` submits held unanswered on it; the third time they are answered."""
    for _round in range(2):
        await smsc.wait_until(lambda: len(smsc.held) >= n, timeout=10)
        smsc.held.clear()
        smsc.drop_all()
    await smsc.wait_until(lambda: len(smsc.held) >= n, timeout=10)
    smsc.answer(n)


async def test_a_later_sms_to_the_suspects_phone_does_not_overtake_it(tmp_path: Path) -> None:
    # Two SMS to one phone in flight when the session is cut, twice: the older is then suspected and
    # backs off; the younger waited with it, and the phone gets them in order.
    async with HeldSMSC() as smsc:
        cfg = parse_config(no_settle(tmp_path, smsc.port), source="t", base_dir=tmp_path)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                await gw.send(mail(f"601777777@{DOMAIN}", "first SMS"))
                await gw.send(mail(f"601777777@{DOMAIN}", "second SMS"))
                await cut_twice_then_answer(smsc, 2)
                await gw.until(lambda: all(s in ("submitted", "delivered") for s in gw.states()), timeout=10)
    assert [s.text for s in smsc.received] == ["first SMS", "second SMS"] * 3
    assert [e["losses"] for e in logs if e["event"] == SUSPECTED] == [2]  # the older one was suspected


async def test_a_held_session_killer_expires_as_delivery_unknown(tmp_path: Path) -> None:
    # Sent five times before its hold: should its validity end on hold, its bounce must not say
    # that it was never sent.
    async with PoisonSMSC() as smsc:
        cfg = gateway_config(tmp_path, smsc.port, "smpp")
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(to(POISON), "The one the SMSC chokes on"))).error is None
            innocent = to("601120000")
            assert (await gw.send(mail(innocent, "Someone else"), [innocent])).error is None
            await gw.until(lambda: gw.states()[0] == "hold", timeout=30)
    store = Store.open(cfg.db_path, clock=lambda: time.time() + 3 * 86400)
    try:
        store.queue.expire_due()
        state, error = store.db.conn.execute("SELECT state, error FROM parts ORDER BY id LIMIT 1").fetchone()
    finally:
        store.db.close()
    assert (state, error) == ("expired", MAYBE_SENT_EXPIRED)


async def test_every_send_lost_with_a_session_is_an_attempt(tmp_path: Path) -> None:
    # Three SMS in flight when the session is cut, twice: each went out three times, and each of
    # those sends counts, not only the oldest one's (nothing else capped the copies).
    async with HeldSMSC() as smsc:
        cfg = parse_config(no_settle(tmp_path, smsc.port), source="t", base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            tos = [f"60188{i:04d}@{DOMAIN}" for i in range(3)]
            await gw.send(mail(tos, "three"), tos)
            await cut_twice_then_answer(smsc, 3)
            await gw.until(lambda: all(s in ("submitted", "delivered") for s in gw.states()), timeout=10)
            rows = gw.store.db.conn.execute("SELECT destination, attempts FROM parts").fetchall()
    copies = Counter(s.destination for s in smsc.received)
    assert sorted(copies.values()) == [3, 3, 3]
    assert {destination: attempts for destination, attempts in rows} == dict(copies)


class _BindLostSMSC(HeldSMSC):
    """Holds the submits; on each of the first two sessions it answers the second one of them
    ESME_RINVBNDSTS, so that the gateway ends the session with the first still unanswered."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions_seen: list[SmppSession] = []

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if session not in self.sessions_seen:
            self.sessions_seen.append(session)
        self.server.record(sms)
        if len(self.sessions_seen) > 2:
            await SmppSession.on_submit_sm(session, seq, sms)
        elif sum(1 for s, _q, _v in self.held if s is session) == 1:
            session.answer_submit(seq, None, status=ESME_RINVBNDSTS, report=False)
        else:
            self.held.append((session, seq, self.core.on_submit(sms)))


async def test_a_session_the_gateway_ends_on_esme_rinvbndsts_blames_no_submit(tmp_path: Path) -> None:
    async with _BindLostSMSC() as smsc:
        cfg = parse_config(no_settle(tmp_path, smsc.port), source="t", base_dir=tmp_path)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                tos = [f"60112{i:04d}@{DOMAIN}" for i in range(4)]
                await gw.send(mail(tos, "four"), tos)
                await gw.until(lambda: all(s in ("submitted", "delivered") for s in gw.states()), timeout=15)
    assert len(smsc.sessions_seen) == 3
    assert [e for e in logs if e["event"] == "smpp.bind_lost"]
    assert not [e for e in logs if e["event"] == SUSPECTED]


async def _submits(conn: PeerConnection, n: int) -> list[Packet]:
    got: list[Packet] = []
    while len(got) < n:
        packet = await conn.next()
        if packet.op == Op.SUBMIT:
            got.append(packet)
        elif packet.op == Op.ALIVE:
            conn.send(Packet(Op.ALIVE_RESP, packet.number))
    return got


async def test_a_session_the_gateway_ends_on_a_cimd2_general_error_blames_no_submit(tmp_path: Path) -> None:
    # A 98 to a submit with an older one unanswered, on two sessions in a row: the gateway logs in
    # again each time, and the older submit, which the SMSC had not dropped, is not suspected.
    sink_port = free_port()
    async with ScriptedSmsc() as peer, smtp_sink(sink_port):
        text = config_text(tmp_path, smsc_port=peer.port, relay_port=sink_port)
        cfg = parse_config(text.replace('type = "smpp"', 'type = "cimd2"'), source="t", base_dir=tmp_path)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                tos = [f"60112{i:04d}@{DOMAIN}" for i in range(4)]
                await gw.send(mail(tos, "four"), tos)
                for _session in range(2):
                    conn = await peer.accept()
                    await conn.login()
                    second = (await _submits(conn, 2))[1]
                    conn.send(Packet.make(Op.GENERAL_ERROR, second.number, (P.ERROR_CODE, 2)))
                last = await peer.accept()
                await last.login()

                async def serve() -> None:
                    while True:
                        (packet,) = await _submits(last, 1)
                        digits = packet.get(P.DESTINATION)
                        last.send(Packet.make(Op.SUBMIT_RESP, packet.number, (P.DESTINATION, digits),
                                              (P.SCTS, "261121045622")))  # fmt: skip

                serving = asyncio.create_task(serve())
                try:
                    await gw.until(lambda: all(s in ("submitted", "delivered") for s in gw.states()), 15)
                finally:
                    serving.cancel()
    assert not [e for e in logs if e["event"] == SUSPECTED], [e for e in logs if e["event"] == SUSPECTED]
    assert not [e for e in logs if KILLER in str(e.get("reason", ""))]


def no_settle(tmp_path: Path, port: int) -> str:
    """The config for an SMSC that sends no receipt of a submit lost with its session: such a submit
    goes again at the rebind, not held the settle after it for a receipt (`smsc.smpp.lostreceipts`)."""
    return config_text(tmp_path, smsc_port=port, smsc_extra="lost_submit_settle_seconds = 0")


def two_links(tmp_path: Path, port_a: int, port_b: int) -> Any:
    """Link "a" takes only the poison's number; "b", listed second, takes it and the others."""
    text = no_settle(tmp_path, port_a).replace('name = "main"', 'name = "a"\nprefixes = ["+48601999"]')
    block = text[text.index("[[smsc]]") : text.index("[simulator]")]
    second = (
        block.replace('name = "a"', 'name = "b"')
        .replace(f"port = {port_a}", f"port = {port_b}")
        .replace('prefixes = ["+48601999"]', 'prefixes = ["+486011", "+48601999"]')
    )
    return parse_config(text + "\n" + second, source="t", base_dir=tmp_path)


async def test_a_hold_needs_other_sms_through_the_same_link(tmp_path: Path) -> None:
    # The poison's first loss is on "a", which never answered anything; then it fails over to "b",
    # which answered the others before the poison came. Nothing went through either link since:
    # the SMSCs may be the trouble, so no hold at the fifth loss (a's count was compared with b's).
    async with PoisonSMSC() as smsc_a, PoisonSMSC() as smsc_b:
        cfg = two_links(tmp_path, smsc_a.port, smsc_b.port)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                innocents = [to(f"60112{i:04d}") for i in range(3)]
                assert (await gw.send(mail(innocents, "Everyone else"), innocents)).error is None
                await gw.until(lambda: all(s in ("submitted", "delivered") for s in gw.states()), 10)
                assert (await gw.send(mail(to(POISON), "The one the SMSCs choke on"))).error is None
                lost = lambda: smsc_a.poisoned + smsc_b.poisoned  # noqa: E731
                await gw.until(lambda: lost() > HOLD_AFTER_LOSSES or gw.states()[-1] == "hold", timeout=30)
                assert gw.states()[-1] != "hold"
        assert smsc_a.poisoned and smsc_b.poisoned
        assert not [e for e in logs if e["event"] == "mt.hold_session_killer"]
