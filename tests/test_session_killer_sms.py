"""One SMS on which the SMSC drops the session (some crash or cut the session on one particular
message) must not stall the link: over a real TCP SMSC, SMPP and CIMD2, the other mails go out while
it backs off, and after `HOLD_AFTER_LOSSES` lost sessions it is held with a reason that says why.

Before, the part lost on the wire kept its turn, went first on every new session and ended it, and
the parts behind it in the window were lost and counted with it: nothing went out for some 50
minutes, until its 50 attempts were spent, and the phone could get 50 copies.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from gateway.cli.mailview import mail_lines
from gateway.config import Config, SimulatorSection, parse_config
from gateway.retryafter import HOLD_AFTER_LOSSES, SUSPECT_AFTER_LOSSES
from gateway.store.mailrecord import mail_of_message, mail_record
from smsc.cimd2.packet import P, Packet, address_digits
from smsc.simulator.cimd2_server import Cimd2Server, Cimd2Session
from smsc.simulator.core import SimulatorCore, SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import DOMAIN, config_text, mail, running_gateway
from tests.fakes.smsc import FakeSMSC

POISON = "601999999"
INNOCENT = [f"60112{i:04d}" for i in range(5)]
KILLER = "the SMSC dropped the session each time this SMS was sent"


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


class PoisonSMSC(FakeSMSC):
    """Cuts the connection without a word when it reads a submit_sm to POISON; the submits behind
    it in the same read die unread with the session."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.poisoned = 0

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if session.writer.transport.is_closing():
            return  # read in the same chunk as the poison: the crashed SMSC never saw it
        if sms.destination.endswith(POISON):
            self.poisoned += 1
            session.writer.transport.abort()
            return
        await super().on_submit(session, seq, sms)


class _PoisonCimd2Session(Cimd2Session):
    """`PoisonSMSC` for CIMD2."""

    def _on_submit(self, packet: Packet) -> None:
        if self.writer.transport.is_closing():
            return
        if self.logged_in and address_digits(packet.get(P.DESTINATION) or "").endswith(POISON):
            self.server.poisoned += 1  # type: ignore[attr-defined]
            self.writer.transport.abort()
            return
        super()._on_submit(packet)


def gateway_config(tmp_path: Path, port: int, link_type: str) -> Config:
    # Window 10 on both links (the test config's), retry base 0.2 s, reconnects within 0.5 s; a CIMD2
    # submit lost with the session goes again 0.5 s after the next login (no report of it ever comes).
    text = config_text(tmp_path, smsc_port=port).replace('type = "smpp"', f'type = "{link_type}"')
    text = text.replace(
        "response_timeout_seconds = 5", "response_timeout_seconds = 5\nlost_submit_settle_seconds = 0.5"
    )
    return parse_config(text, source="test config", base_dir=tmp_path)


async def stalled_link_goes_on(cfg: Config, poisoned: Any) -> None:
    """The poison goes first, the five innocent SMS in one mail right behind it (the same window)."""
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            db = gw.store.db.conn
            assert (await gw.send(mail(to(POISON), "The one the SMSC chokes on"))).error is None
            innocents = [to(n) for n in INNOCENT]
            assert (await gw.send(mail(innocents, "Everyone else"), innocents)).error is None

            def settled() -> bool:
                states = gw.states()
                return states[0] == "hold" and all(s in ("submitted", "delivered") for s in states[1:])

            await gw.until(settled, timeout=30)
            rows = db.execute("SELECT destination, state, attempts, error FROM parts ORDER BY id").fetchall()
            poison, others = rows[0], rows[1:]
            assert poison[0].endswith(POISON) and poison[1] == "hold"
            assert KILLER in poison[3]
            # Lost with it on the wire and sent again as possible duplicates, each send an attempt
            # (MAX_ATTEMPTS caps the copies): few, as it stops going first from its second loss.
            assert len(others) == 5 and all(attempts <= 2 for _d, _s, attempts, _e in others), others
            assert poisoned() == HOLD_AFTER_LOSSES  # not 50 copies
            # What `queue show` prints of the held message says why.
            message = db.execute("SELECT message_id FROM parts ORDER BY id LIMIT 1").fetchone()[0]
            email = mail_of_message(db, message)
            assert email is not None
            record = mail_record(db, email, time.time())
            assert record is not None
            zone = ZoneInfo(cfg.gateway.timezone)
            shown = "\n".join(mail_lines(record, shown=message, zone=zone, now=time.time()))
            assert KILLER in shown
            part = db.execute("SELECT id FROM parts ORDER BY id LIMIT 1").fetchone()[0]
    held = [e for e in logs if e["event"] == "mt.hold_session_killer"]
    assert [e["part"] for e in held] == [part] and KILLER in held[0]["reason"]
    suspected = [e for e in logs if e["event"] == "mt.session_killer_suspected"]
    assert [e["losses"] for e in suspected] == list(range(SUSPECT_AFTER_LOSSES, HOLD_AFTER_LOSSES))
    assert all(e["part"] == part for e in suspected)


async def test_an_sms_the_smpp_smsc_drops_the_session_on_is_held_and_the_rest_go(tmp_path: Path) -> None:
    async with PoisonSMSC() as smsc:
        await stalled_link_goes_on(gateway_config(tmp_path, smsc.port, "smpp"), lambda: smsc.poisoned)
        # Each innocent SMS reached the SMSC once: those lost with the poison died unread.
        assert sorted(s.destination for s in smsc.received) == sorted(f"+48{n}" for n in INNOCENT)


async def test_an_sms_the_cimd2_smsc_drops_the_session_on_is_held_and_the_rest_go(tmp_path: Path) -> None:
    core = SimulatorCore(
        SimulatorSection(
            system_id="smsgw", password="secret", dlr_delay_seconds=0, fail_suffixes=[], reject_suffixes=[]
        ),
        tmp_path / "sim.jsonl",
    )
    server = Cimd2Server(core, retry_delay=0.02)
    server.session_class = _PoisonCimd2Session
    server.poisoned = 0  # type: ignore[attr-defined]
    await server.start()
    try:
        poisoned = lambda: server.poisoned  # type: ignore[attr-defined]  # noqa: E731
        await stalled_link_goes_on(gateway_config(tmp_path, server.port, "cimd2"), poisoned)
        assert sorted(s.destination for s in server.received) == sorted(f"+48{n}" for n in INNOCENT)
    finally:
        await server.stop()
        await core.close()


async def test_an_smsc_that_drops_every_session_gets_no_sms_held_at_the_fifth_loss(tmp_path: Path) -> None:
    # Nothing else went through meanwhile, so the SMSC may be the trouble rather than the SMS: the
    # part backs off on instead of waiting for a human once the SMSC is well again.
    async with PoisonSMSC() as smsc:
        cfg = gateway_config(tmp_path, smsc.port, "smpp")
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                assert (await gw.send(mail(to(POISON), "Alone in the queue"))).error is None
                await gw.until(lambda: smsc.poisoned > HOLD_AFTER_LOSSES, timeout=30)
                assert gw.states() != ["hold"]
        assert not [e for e in logs if e["event"] == "mt.hold_session_killer"]
        suspected = [e["losses"] for e in logs if e["event"] == "mt.session_killer_suspected"]
        assert suspected[: HOLD_AFTER_LOSSES - 1] == list(range(SUSPECT_AFTER_LOSSES, HOLD_AFTER_LOSSES + 1))
