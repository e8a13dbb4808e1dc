"""A CIMD2 general error (98) to a submit is a temporary failure followed by a new login, whatever
900 code it carries (protocols.md 1.13); only a submit response (53) with a 900 refuses an SMS for
good. A 98 with 900:2, 3 or 8 had failed the message as malformed, and one with 900:3xx as refused,
each with a failure notice to its sender. Against the real daemon and a scripted SMSC over TCP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import structlog

from gateway.config import parse_config
from gateway.reasons import refused_for_good
from smsc.base import Outcome
from smsc.cimd2.packet import Op, P, Packet
from tests.conftest import DOMAIN, Running, Sink, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.cimd2 import PeerConnection, ScriptedSmsc
from tests.test_cimd2_link import scripted, sms


async def next_submit(conn: PeerConnection) -> Packet:
    """The client's next submit; alives on the way are answered."""
    while (packet := await conn.next()).op != Op.SUBMIT:
        if packet.op == Op.ALIVE:
            conn.send(Packet(Op.ALIVE_RESP, packet.number))
    return packet


class FirstSubmit(NamedTuple):
    gw: Running
    peer: ScriptedSmsc
    conn: PeerConnection  # the first session, logged in
    submit: Packet  # the mail's first submit, unanswered
    sink: Sink  # where the daemon relays its notices to senders
    logs: list[dict[str, Any]]


@asynccontextmanager
async def daemon_to_first_submit(tmp_path: Path, rcpt: str, body: str) -> AsyncIterator[FirstSubmit]:
    """The daemon over CIMD2 to a scripted SMSC, its log captured: one mail to `rcpt` sent and its
    first submit read, left for the test to answer as the SMSC it plays."""
    sink_port = free_port()
    async with ScriptedSmsc() as peer, smtp_sink(sink_port) as sink:
        text = config_text(tmp_path, smsc_port=peer.port, relay_port=sink_port)
        cfg = parse_config(text.replace('type = "smpp"', 'type = "cimd2"'), source="test", base_dir=tmp_path)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                conn = await peer.accept()
                await conn.login()
                await gw.send(mail(rcpt, body))
                yield FirstSubmit(gw, peer, conn, await next_submit(conn), sink, logs)


async def closed_by_client(conn: PeerConnection) -> list[int]:
    """What the client still wrote on `conn` until it closed it (EOF), by operation."""
    ops = []
    try:
        while True:
            ops.append((await conn.next()).op)
    except EOFError:
        return ops


@pytest.mark.parametrize("code", [2, 3, 8, 300, 10])
async def test_a_general_error_to_a_submit_is_sent_again_after_a_new_login_and_bounces_nothing(
    tmp_path: Path, code: int
) -> None:
    # The SMSC answers the first submit with 98 and a 900 code: the link logs in again and the part
    # goes again on the new session, where it is accepted. No failure notice reaches the sender.
    to, body = f"601123456@{DOMAIN}", "Hello after a 98"
    async with daemon_to_first_submit(tmp_path, to, body) as (gw, peer, first, refused, sink, logs):
        first.send(Packet.make(Op.GENERAL_ERROR, refused.number, (P.ERROR_CODE, code),
                               (P.ERROR_TEXT, "general error")))  # fmt: skip
        assert Op.SUBMIT not in await closed_by_client(first)  # the link ended that session
        again = await peer.accept()
        assert (await again.login()).number == 1
        resent = await next_submit(again)
        assert resent.get(P.USER_DATA) == refused.get(P.USER_DATA) == body
        again.send(Packet.make(Op.SUBMIT_RESP, resent.number, (P.DESTINATION, "+48601123456"),
                               (P.SCTS, "261121045622")))  # fmt: skip
        await gw.until(lambda: gw.states() == ["submitted"])
        db = gw.store.db.conn
        assert db.execute("SELECT attempts FROM parts").fetchone()[0] == 2
    assert sink.messages == []
    # Not counted as a copy the SMSC may hold: it could not process the packet at all.
    assert not [e for e in logs if e["event"] == "mt.possible_duplicate"]


@pytest.mark.parametrize("code", [1, 2, 300])
async def test_a_general_error_is_temporary_and_its_reason_no_refusal(code: int) -> None:
    # The link's own verdict, and the words the part keeps: "CIMD2 900:300 …" is read as a refusal
    # of the number for good (`gateway.reasons`), which a 98 is not.
    async with scripted() as (link, _events, conn, peer):
        task = asyncio.create_task(link.submit(sms()))
        submit = await conn.next()
        conn.send(Packet.make(Op.GENERAL_ERROR, submit.number, (P.ERROR_CODE, code)))
        result = await task
        assert result.outcome is Outcome.TEMPORARY and not result.written
        assert result.error is not None and f"900:{code}" in result.error
        assert refused_for_good(result.error) is None
        await closed_by_client(conn)
        await (await peer.accept()).login()


async def test_a_submit_response_with_a_3xx_code_still_refuses_the_sms() -> None:
    async with scripted() as (link, _events, conn, _peer):
        task = asyncio.create_task(link.submit(sms()))
        submit = await conn.next()
        conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.ERROR_CODE, 300)))
        result = await task
        assert result.outcome is Outcome.REJECTED and refused_for_good(result.error) is not None
