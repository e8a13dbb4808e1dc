"""A CIMD2 MO with a sender and no user data at all (neither 033 nor 034), with the daemon on a CIMD2 link
to the simulator's server over TCP.

The phone sent an empty SMS; to a premium number it paid for it. The link answered it 70 and dropped it
("no user data"): no mail, no premium_mo row, the operator told nothing, while the same MO over SMPP (an
empty short_message) or with an empty 033 is mailed "(the SMS was empty)", and a premium one is recorded
and sent to the fallback address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.config import SimulatorSection, parse_config
from smsc.cimd2.packet import Op, P, Packet
from smsc.simulator.cimd2_server import Cimd2Server, Cimd2Session
from smsc.simulator.cimd2_texts import format_time
from smsc.simulator.core import SimulatorCore
from tests.conftest import (
    DOMAIN,
    STAFF,
    Running,
    Sink,
    config_text,
    free_port,
    mail,
    running_gateway,
    smtp_sink,
)
from tests.test_cimd2_link import scripted
from tests.test_mo_redelivery import charges, confirmed_kp123
from tests.test_two_way import parsed

PHONE = "+48601123456"
OURS = "48100200300"  # the acme account's sender in tests.conftest, as an SMSC writes it in 021
FALLBACK = "ops@fallback.example"
PREMIUM = f'\n[premium]\nnumbers = ["7355"]\nfallback_address = "{FALLBACK}"\n'
EMPTY = "(the SMS was empty)"


@asynccontextmanager
async def gateway_on_cimd2(tmp_path: Path) -> AsyncIterator[tuple[Running, Cimd2Server, Sink]]:
    """The daemon on a CIMD2 link to the simulator, logged in, with acme's premium service KP123
    confirmed, and the relay sink of its mail."""
    core = SimulatorCore(SimulatorSection(system_id="smsgw", password="secret"), tmp_path / "sim.jsonl")
    server = Cimd2Server(core, retry_delay=0.05)
    await server.start()
    relay = free_port()
    try:
        async with smtp_sink(relay) as sink:
            text = config_text(tmp_path, smsc_port=server.port, relay_port=relay, extra=PREMIUM)
            path = tmp_path / "config.toml"
            path.write_text(text.replace('type = "smpp"', 'type = "cimd2"'))
            cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
            async with running_gateway(cfg) as gw:
                await confirmed_kp123(gw, path)
                await gw.until(lambda: any(s.logged_in for s in server.sessions))
                yield gw, server, sink
    finally:
        await server.stop()
        await core.close()


def session(server: Cimd2Server) -> Cimd2Session:
    [logged_in] = [s for s in server.sessions if s.logged_in]
    return logged_in


def deliver(destination: str, *user_data: tuple[int, str]) -> tuple[tuple[int, str], ...]:
    """The parameters of a 20 from PHONE to `destination`, with `user_data` (none: neither 033 nor 034)."""
    now = format_time(datetime.now(UTC))
    return ((P.DESTINATION, destination), (P.ORIGINATOR, PHONE), (P.SCTS, now), *user_data)


def bodies(sink: Sink, rcpt: str) -> list[str]:
    return [parsed(raw).get_content() for _, rcpts, raw in sink.messages if rcpts == [rcpt]]


def mo_rows(gw: Running) -> list[tuple[str, str]]:
    return list(gw.store.db.conn.execute("SELECT text, state FROM mo ORDER BY id"))


@pytest.mark.parametrize(
    "user_data",
    [(), ((P.DCS, "8"), (P.USER_DATA_BINARY, ""))],
    ids=["neither_033_nor_034", "empty_034"],
)
async def test_a_reply_without_user_data_reaches_the_staff_member_as_the_empty_sms(
    tmp_path: Path, user_data: tuple[tuple[int, str], ...]
) -> None:
    async with gateway_on_cimd2(tmp_path) as (gw, server, sink):
        to = f"601123456@{DOMAIN}"
        assert (await gw.send(mail(to, "Czy 10:00?", "Spotkanie"), [to])).error is None
        await server.wait_until(lambda: len(server.received) == 1, 20)
        await session(server).send_part(deliver(OURS, *user_data))
        await gw.until(lambda: bool(bodies(sink, STAFF)))
        [body] = bodies(sink, STAFF)
        assert body.startswith(EMPTY), body
        assert "Czy 10:00?" in body  # as the answer to the staff member's SMS
        assert [text for text, _state in mo_rows(gw)] == [""]
        # Acknowledged once, with no error; the mail may go before the answer is on the wire, and the
        # MT's own status report's answer may come first (a loaded machine): only the MO's counted.
        await server.wait_until(lambda: any(op == Op.DELIVER for op, _ in server.answers), 20)
        assert [a for a in server.answers if a[0] == Op.DELIVER] == [(Op.DELIVER, 0)]


async def test_a_premium_mo_without_user_data_is_recorded_and_mailed_to_the_fallback(tmp_path: Path) -> None:
    async with gateway_on_cimd2(tmp_path) as (gw, server, sink):
        await session(server).send_part(deliver("7355"))
        await gw.until(lambda: bool(bodies(sink, FALLBACK)))
        [body] = bodies(sink, FALLBACK)
        # Said to be no premium password's, as any text without one is: the operator sees the phone paid.
        assert "Not forwarded to a client" in body, body
        assert "Premium SMS to 7355 from +48 601 123 456" in body, body
        assert [text for text, _price in charges(gw.config.db_path)] == [""]
        assert [text for text, _state in mo_rows(gw)] == [""]
        assert server.answers == [(Op.DELIVER, 0)]


async def test_the_link_hands_up_a_deliver_without_033_or_034_as_empty_text() -> None:
    async with scripted() as (link, events, conn, _peer):
        conn.send(Packet.make(Op.DELIVER, 0, *deliver("7155")))
        answer = await conn.next()
        assert (answer.op, answer.number, answer.params) == (Op.DELIVER_RESP, 0, [])
        await events.wait_for(lambda: len(events.delivered) == 1)
        [sms] = events.delivered
        assert (sms.source, sms.destination, sms.text, sms.data_coding) == (PHONE, "7155", "", 0)
        assert link.stats().extra["mo_rejected"] == "0"
