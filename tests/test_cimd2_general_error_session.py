"""A CIMD2 general error (98) to any request of ours ends the session for a new login, not only one to
a submit (protocols.md 1.13: the SMSC lost the session's state). A 98 to an alive was taken as its
answer: the link kept a session the SMSC no longer knew, and the SMS after it went to that session,
refused or lost. Submits outstanding on the ended session are the gateway's close (lost_behind None).
A 98 matching no request of ours ends the session while requests wait (Kannel's `cimd2_request` looks
at a 98 before its packet number) and is logged and ignored when none does. Against the real daemon
and a scripted SMSC over TCP, and the link alone against the same SMSC.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
import structlog

from gateway.config import parse_config
from smsc.base import LinkState, Outcome
from smsc.cimd2.packet import Op, P, Packet
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.cimd2 import PeerConnection, ScriptedSmsc
from tests.test_cimd2_general_error import closed_by_client, next_submit
from tests.test_cimd2_link import mo, scripted, sms


def general_error(number: int, code: int = 1) -> Packet:
    # The SMSC's own text quotes a number, as some do: it must not reach our log.
    text = (P.ERROR_TEXT, "no session +48601123456")
    return Packet.make(Op.GENERAL_ERROR, number, (P.ERROR_CODE, code), text)


def accept(conn: PeerConnection, submit: Packet) -> None:
    conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.DESTINATION, submit.get(P.DESTINATION) or ""),
                          (P.SCTS, "261121045622")))  # fmt: skip


async def next_of(conn: PeerConnection, op: int) -> Packet:
    """The client's next packet of operation `op`; alives on the way are answered."""
    while (packet := await conn.next()).op != op:
        if packet.op == Op.ALIVE:
            conn.send(Packet(Op.ALIVE_RESP, packet.number))
    return packet


async def answer_alives_and_logout(conn: PeerConnection) -> None:
    with contextlib.suppress(EOFError, TimeoutError):
        while True:
            packet = await conn.next()
            if packet.op in (Op.ALIVE, Op.LOGOUT):
                conn.send(Packet(packet.op + 50, packet.number))


def general_error_logs(logs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in logs if e["event"] == "cimd2.general_error"]


def about_the_error(logs: list[dict[str, object]]) -> list[dict[str, object]]:
    """What the link logged of the 98 and the session it ended (the SMSC's 901 text quotes a number)."""
    return [e for e in logs if e["event"] in ("cimd2.general_error", "cimd2.disconnected")]


async def test_a_general_error_to_an_alive_logs_in_again_and_the_next_sms_goes_out(tmp_path: Path) -> None:
    # The daemon's link logs in, its first alive (the check that the session holds) gets a 98: the
    # link ends that session and logs in again, and the mail's SMS goes out on the new one. Before,
    # the 98 passed for the alive's answer and the SMS went to the session the SMSC had dropped.
    sink_port = free_port()
    async with ScriptedSmsc() as peer, smtp_sink(sink_port) as sink:
        text = config_text(tmp_path, smsc_port=peer.port, relay_port=sink_port)
        cfg = parse_config(text.replace('type = "smpp"', 'type = "cimd2"'), source="test", base_dir=tmp_path)
        logins = 0
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                first = await peer.accept()
                await first.login()
                logins += 1
                alive = await first.next()
                assert alive.op == Op.ALIVE, alive.describe()
                first.send(general_error(alive.number))
                await gw.send(mail(f"601123456@{DOMAIN}", "Hello after a lost session"))
                assert await closed_by_client(first) == []  # no submit on the dropped session
                again = await peer.accept()
                assert (await again.login()).number == 1
                logins += 1
                submit = await next_submit(again)
                assert submit.get(P.USER_DATA) == "Hello after a lost session"
                accept(again, submit)
                await gw.until(lambda: gw.states() == ["submitted"])
                assert gw.store.db.conn.execute("SELECT attempts FROM parts").fetchone()[0] == 1
                answering = asyncio.create_task(answer_alives_and_logout(again))  # a prompt stop
            assert logins == 2
            with pytest.raises(TimeoutError):  # no third login
                await peer.accept(within=0.5)
    answering.cancel()
    assert sink.messages == []
    (warned,) = general_error_logs(logs)
    assert warned["log_level"] == "warning" and warned["code"] == 1, warned
    assert "ALIVE" in str(warned["answering"])
    said = str(about_the_error(logs))
    assert "900:1" in said and "601123456" not in said and "Hello" not in said


async def test_submits_outstanding_behind_a_general_error_to_an_alive_are_not_blamed() -> None:
    # Window 2: a submit waits when the SMSC answers the alive beside it with 98. The submit is the
    # gateway's close, not the SMSC's (lost_behind None); the link logs in again and the next SMS goes.
    with structlog.testing.capture_logs() as logs:
        async with scripted(window=2) as (link, events, conn, peer):
            task = asyncio.create_task(link.submit(sms()))
            got = {}
            while len(got) < 2:  # the submit, and the alive that checks the new session holds
                packet = await conn.next()
                got[packet.op] = packet
            assert set(got) == {Op.SUBMIT, Op.ALIVE}
            conn.send(general_error(got[Op.ALIVE].number, 3))
            result = await asyncio.wait_for(task, 10)
            assert result.outcome is Outcome.TEMPORARY and result.written and result.lost_behind is None
            assert result.error is not None and "general error (98) 900:3" in result.error
            assert await closed_by_client(conn) == []
            again = await peer.accept()
            await again.login()
            await events.wait_for(lambda: link.state is LinkState.ACTIVE)
            task = asyncio.create_task(link.submit(sms(part_id=2)))
            accept(again, await next_of(again, Op.SUBMIT))
            assert (await asyncio.wait_for(task, 10)).outcome is Outcome.ACCEPTED
    (warned,) = general_error_logs(logs)
    assert warned["code"] == 3 and warned["outstanding"] == 1, warned
    assert "601123456" not in str(about_the_error(logs))


async def test_a_general_error_matching_no_request_ends_the_session_while_one_waits() -> None:
    # Stop-and-wait, a submit on the wire, and a 98 with a packet number of none of ours: Kannel
    # takes any 98 while it waits as the end of the session, and so does the link. The submit may be
    # with the SMSC (written) and is not blamed for the loss.
    async with scripted() as (link, _events, conn, peer):
        task = asyncio.create_task(link.submit(sms()))
        submit = await next_of(conn, Op.SUBMIT)
        conn.send(general_error(submit.number + 100, 2))
        result = await asyncio.wait_for(task, 10)
        assert result.outcome is Outcome.TEMPORARY and result.written and result.lost_behind is None
        await closed_by_client(conn)
        await (await peer.accept()).login()


async def test_an_unsolicited_general_error_is_logged_and_the_session_kept() -> None:
    # Nothing of ours waits: as Kannel's reader, the link logs the stray 98 and goes on; the next
    # submit goes out on the same session.
    with structlog.testing.capture_logs() as logs:
        async with scripted() as (link, events, conn, _peer):
            alive = await conn.next()  # the check that the session holds
            assert alive.op == Op.ALIVE
            conn.send(Packet(Op.ALIVE_RESP, alive.number))
            await events.wait_for(lambda: link.stats().extra["alives"] == "1")
            conn.send(general_error(201))
            await events.wait_for(lambda: link.stats().extra["unexpected"] == "1")
            task = asyncio.create_task(link.submit(sms()))
            accept(conn, await next_of(conn, Op.SUBMIT))
            assert (await asyncio.wait_for(task, 10)).outcome is Outcome.ACCEPTED
            assert link.state is LinkState.ACTIVE
    assert not general_error_logs(logs)
    (stray,) = [e for e in logs if e["event"] == "cimd2.unexpected_general_error"]
    assert stray["code"] == 1 and "601123456" not in str(stray)


async def test_a_general_error_to_the_alive_after_an_mo_ack_leaves_the_mo_unconfirmed() -> None:
    # The alive after a 70 asks whether the SMSC read it; a 98 to it says the SMSC lost the session,
    # so the 70 may be lost with it: the MO is unconfirmed (the SMSC may deliver it again), and the
    # link logs in again. Before, the 98 confirmed it as an answer would and the session went on.
    async with scripted() as (_link, events, conn, peer):
        conn.send(mo(0, text="one"))
        assert (await conn.next()).op == Op.DELIVER_RESP
        alive = await conn.next()
        assert alive.op == Op.ALIVE
        conn.send(general_error(alive.number))
        await events.wait_for(lambda: len(events.acked) == 1)
        assert events.acked == [("one", False)]
        assert await closed_by_client(conn) == []
        await (await peer.accept()).login()
