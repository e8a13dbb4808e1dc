"""A CIMD2 submit the SMSC may have taken without answering: its status report, wherever it is read,
settles the part, and the phone gets the SMS once. The daemon over CIMD2 to a scripted SMSC on TCP
(no simulator closes a session after reading a submit, nor reports on another bind), real SQLite.

- The SMSC closes the session after reading the submit, before its 53, and reports the SMS delivered
  first thing on the next session: the part was sent again at once on that session, the report
  stored unmatched, and the phone had the SMS twice.
- The same with the report read before the close, on the same session.
- Two binds of one SMSC account: the submit goes unanswered on one (response timeout), its report
  comes on the other. Each link awaited reports on its own sessions only, and the SMS went again
  after the grace.
- A submit lost with the session and never reported keeps its turn: it goes again first on the next
  session, a few seconds after the login (the reports the SMSC owes come then), before a later SMS to
  the same phone (F5). It waited the whole grace, and that later SMS went before it.
- So a link drop delays the SMS on the wire by seconds after the reconnect, not by the grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog

from gateway.config import Config, parse_config
from smsc.cimd2.packet import Op, P, Packet
from tests.conftest import config_text, mail, running_gateway
from tests.fakes.cimd2 import PeerConnection, ScriptedSmsc
from tests.test_late_answer import to, warnings

GRACE = 30  # seconds: far longer than the test, so that a re-send inside it is the fault


def cimd2_config(
    tmp_path: Path, port: int, *, second_bind: bool = False, grace: float = GRACE, settle: float | None = None
) -> Config:
    extra = f"late_answer_grace_seconds = {grace}\nresponse_timeout_seconds = 1\n"
    if settle is not None:
        extra += f"lost_submit_settle_seconds = {settle}\n"
    text = config_text(tmp_path, smsc_port=port)
    text = text.replace('type = "smpp"', 'type = "cimd2"').replace("response_timeout_seconds = 5", extra, 1)
    if second_bind:  # the same host, port and login: one SMSC account
        lines = ['name = "second"', 'type = "cimd2"', f"port = {port}", 'system_id = "smsgw"',
                 'password = "secret"', "window = 10", "max_per_second = 1000", extra,
                 "reconnect_min_seconds = 0.1", "reconnect_max_seconds = 0.5"]  # fmt: skip
        text = text.replace("\n[simulator]", "\n[[smsc]]\n" + "\n".join(lines) + "\n\n[simulator]", 1)
    return parse_config(text, source="test config", base_dir=tmp_path)


async def until_op(conn: PeerConnection, op: int) -> Packet:
    """The client's next packet of `op`; alives on the way are answered."""
    while (packet := await conn.next()).op != op:
        if packet.op == Op.ALIVE:
            conn.send(Packet(Op.ALIVE_RESP, packet.number))
    return packet


@contextlib.asynccontextmanager
async def answering_alives(conn: PeerConnection) -> AsyncIterator[None]:
    """Keeps a session the test does not drive up: its alives answered, anything else dropped."""

    async def serve() -> None:
        with contextlib.suppress(EOFError):
            while True:
                await until_op(conn, -1)

    task = asyncio.create_task(serve())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def report(submit: Packet, stamp: str, number: int = 2) -> Packet:
    phone = submit.get(P.DESTINATION)
    return Packet.make(Op.STATUS_REPORT, number, (P.DESTINATION, phone), (P.SCTS, stamp), (P.STATUS_CODE, 4),
                       (P.DISCHARGE_TIME, stamp))  # fmt: skip


def settled_once(gw: Any, stamp: str) -> None:
    db = gw.store.db.conn
    [(smsc_id, attempts)] = db.execute("SELECT smsc_id, attempts FROM parts")
    [(matched,)] = db.execute("SELECT part_id IS NOT NULL FROM dlrs")
    assert smsc_id == f"{stamp}:48601123456" and matched and attempts == 1
    assert sum(gw.daemon.dispatcher.possible_duplicates(n) for n in ("main", "second")) == 0


async def test_a_report_on_the_next_session_settles_a_submit_the_smsc_closed_on(tmp_path: Path) -> None:
    async with ScriptedSmsc() as peer:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cimd2_config(tmp_path, peer.port)) as gw:
                first = await peer.accept()
                await first.login()
                await gw.send(mail(to("601123456"), "Taken, then the session closed"))
                submit = await until_op(first, Op.SUBMIT)
                stamp = time.strftime("%y%m%d%H%M%S", time.gmtime())  # the SMSC's, never told
                first.close()
                again = await peer.accept()
                await again.login()
                again.send(report(submit, stamp))
                assert (await until_op(again, Op.STATUS_REPORT_RESP)).number == 2
                async with answering_alives(again):
                    await gw.until(lambda: gw.states() == ["delivered"])
                    settled_once(gw, stamp)
    assert not warnings(logs, "mt.possible_duplicate")
    assert warnings(logs, "cimd2.unanswered_submit_reported")


async def test_a_report_read_before_the_close_settles_the_submit(tmp_path: Path) -> None:
    async with ScriptedSmsc() as peer:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cimd2_config(tmp_path, peer.port)) as gw:
                first = await peer.accept()
                await first.login()
                await gw.send(mail(to("601123456"), "Reported, then the session closed"))
                submit = await until_op(first, Op.SUBMIT)
                stamp = time.strftime("%y%m%d%H%M%S", time.gmtime())
                first.send(report(submit, stamp))
                await until_op(first, Op.STATUS_REPORT_RESP)
                first.close()
                again = await peer.accept()
                await again.login()
                async with answering_alives(again):
                    await gw.until(lambda: gw.states() == ["delivered"])
                    settled_once(gw, stamp)
    assert not warnings(logs, "mt.possible_duplicate")


async def test_a_report_on_another_bind_of_the_account_settles_an_unanswered_submit(tmp_path: Path) -> None:
    async with ScriptedSmsc() as peer:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cimd2_config(tmp_path, peer.port, second_bind=True)) as gw:
                binds = [await peer.accept(), await peer.accept()]
                for conn in binds:
                    await conn.login()
                await gw.send(mail(to("601123456"), "Unanswered on one bind, reported on the other"))
                reads = {asyncio.create_task(until_op(conn, Op.SUBMIT)): conn for conn in binds}
                done, pending = await asyncio.wait(reads, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                [read] = done
                submit, other = read.result(), next(c for c in binds if c is not reads[read])
                stamp = time.strftime("%y%m%d%H%M%S", time.gmtime())
                async with answering_alives(other):  # unanswered: the link times out and logs in again
                    await gw.until(lambda: bool(warnings(logs, "mt.unanswered")))
                again = await peer.accept()
                await again.login()
                async with answering_alives(again):
                    other.send(report(submit, stamp))
                    assert (await until_op(other, Op.STATUS_REPORT_RESP)).number == 2
                    async with answering_alives(other):
                        await gw.until(lambda: gw.states() == ["delivered"])
                        settled_once(gw, stamp)
    assert not warnings(logs, "mt.possible_duplicate")
    [reported] = warnings(logs, "cimd2.unanswered_submit_reported")
    assert reported["link"] != reported["read_by"]


def answer(submit: Packet) -> Packet:
    stamp = time.strftime("%y%m%d%H%M%S", time.gmtime())
    return Packet.make(Op.SUBMIT_RESP, submit.number, (P.DESTINATION, submit.get(P.DESTINATION) or ""),
                       (P.SCTS, stamp))  # fmt: skip


async def test_a_submit_lost_with_the_session_goes_again_first_after_the_next_login(tmp_path: Path) -> None:
    async with ScriptedSmsc() as peer:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cimd2_config(tmp_path, peer.port, settle=2)) as gw:
                first = await peer.accept()
                await first.login()
                await gw.send(mail(to("601123456"), "First SMS"))
                assert "First SMS" in ((await until_op(first, Op.SUBMIT)).get(P.USER_DATA) or "")
                first.close()  # taken or not: no answer, and no report ever comes
                await gw.until(lambda: bool(warnings(logs, "mt.link_lost_on_the_wire")))
                await gw.send(mail(to("601123456"), "Second SMS"))
                await gw.until(lambda: len(gw.states()) == 2)
                again = await peer.accept()
                await again.login()
                # The hang guard (10 s) is a third of the grace: the re-send comes after the settle (2 s).
                resent = await until_op(again, Op.SUBMIT)
                assert "First SMS" in (resent.get(P.USER_DATA) or ""), resent.describe()
                again.send(answer(resent))
                later = await until_op(again, Op.SUBMIT)
                assert "Second SMS" in (later.get(P.USER_DATA) or ""), later.describe()
                again.send(answer(later))
                async with answering_alives(again):
                    db = gw.store.db.conn
                    await gw.until(lambda: db.execute("SELECT count(*) FROM parts WHERE smsc_id IS NULL")
                                   .fetchone()[0] == 0)  # fmt: skip
    [resend] = warnings(logs, "mt.possible_duplicate")  # the first: the SMSC may have had it
    assert resend["part"] == 1


async def test_a_submit_lost_with_the_session_goes_again_seconds_after_the_reconnect(tmp_path: Path) -> None:
    async with ScriptedSmsc() as peer:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cimd2_config(tmp_path, peer.port, grace=600, settle=2)) as gw:
                first = await peer.accept()
                await first.login()
                await gw.send(mail(to("601123456"), "On the wire as the link dropped"))
                await until_op(first, Op.SUBMIT)
                first.close()
                again = await peer.accept()
                await again.login()
                # Not the grace (10 minutes): the settle after the login (2 s), in a hang guard of 30.
                resent = await again.next(within=30)
                while resent.op == Op.ALIVE:
                    again.send(Packet(Op.ALIVE_RESP, resent.number))
                    resent = await again.next(within=30)
                assert resent.op == Op.SUBMIT, resent.describe()
                again.send(answer(resent))
                async with answering_alives(again):
                    db = gw.store.db.conn
                    await gw.until(lambda: db.execute("SELECT smsc_id IS NOT NULL, attempts FROM parts")
                                   .fetchone() == (1, 2))  # fmt: skip
    [resend] = warnings(logs, "mt.possible_duplicate")
    assert resend["earlier"] == "main"


async def test_a_delivery_report_seconds_after_the_next_login_settles_the_lost_submit(tmp_path: Path) -> None:
    """A status report is a delivery report: it comes when the phone has the SMS, seconds after the
    login as well as at it. With the default settle, the SMS is not sent again meanwhile."""
    async with ScriptedSmsc() as peer:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cimd2_config(tmp_path, peer.port)) as gw:
                first = await peer.accept()
                await first.login()
                await gw.send(mail(to("601123456"), "Taken, the phone has it 6 s after the next login"))
                submit = await until_op(first, Op.SUBMIT)
                stamp = time.strftime("%y%m%d%H%M%S", time.gmtime())
                first.close()
                again = await peer.accept()
                await again.login()
                resent = asyncio.create_task(until_op(again, Op.SUBMIT))
                done, _ = await asyncio.wait({resent}, timeout=6)
                assert not done, "sent again before its delivery report came: the phone gets it twice"
                resent.cancel()
                await asyncio.gather(resent, return_exceptions=True)
                again.send(report(submit, stamp))
                async with answering_alives(again):
                    await gw.until(lambda: gw.states() == ["delivered"])
                    settled_once(gw, stamp)
    assert not warnings(logs, "mt.possible_duplicate")


async def test_with_another_bind_up_a_lost_submit_waits_the_settle_after_the_loss(tmp_path: Path) -> None:
    """The account's other bind is up all along: the settle counts from the loss, not from a login."""
    async with ScriptedSmsc() as peer:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cimd2_config(tmp_path, peer.port, second_bind=True)) as gw:
                binds = [await peer.accept(), await peer.accept()]
                for conn in binds:
                    await conn.login()
                await gw.send(mail(to("601123456"), "Lost on one bind, the phone has it 6 s later"))
                reads = {asyncio.create_task(until_op(conn, Op.SUBMIT)): conn for conn in binds}
                done, pending = await asyncio.wait(reads, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                [read] = done
                submit, other = read.result(), next(c for c in binds if c is not reads[read])
                stamp = time.strftime("%y%m%d%H%M%S", time.gmtime())
                reads[read].close()  # its bind's new session is never let in: the other is the one up
                await gw.until(lambda: bool(warnings(logs, "mt.link_lost_on_the_wire")))
                resent = asyncio.create_task(until_op(other, Op.SUBMIT))
                done, _ = await asyncio.wait({resent}, timeout=6)
                assert not done, "sent again on the other bind before its delivery report came"
                resent.cancel()
                await asyncio.gather(resent, return_exceptions=True)
                other.send(report(submit, stamp))
                async with answering_alives(other):
                    await gw.until(lambda: gw.states() == ["delivered"])
                    settled_once(gw, stamp)
    assert not warnings(logs, "mt.possible_duplicate")
