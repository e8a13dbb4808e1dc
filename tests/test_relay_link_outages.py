"""Relay and link outages: mail deferred for a relay that came back waited out
its back-off (up to an hour); a relay down logged one warning per mail per try; a wrong SMSC password
said only "ESME_RINVPASWD (0x0E)"; an idle link stayed "slowed after throttling" for ever.

The relay is a real aiosmtpd server on 127.0.0.1, stopped and started again; the store a real SQLite
file on a hand-moved clock; the SMSCs real peers over TCP (the fake SMPP SMSC, a scripted CIMD2 one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from gateway.cli.statuslinks import allowed
from gateway.configservices import MailSection
from gateway.linkstatus import LinkView
from gateway.mailer import SmtpRelayMailer
from gateway.outboxworker import OutboxWorker
from gateway.store.db import Store
from smsc.base import Outcome
from smsc.cimd2.link import Cimd2Link
from smsc.cimd2.packet import Op, P, Packet
from smsc.pacing import LinkPacer
from tests.conftest import Sink, free_port, make_config, running_gateway, smtp_sink
from tests.fakes.cimd2 import RecordingEvents, ScriptedSmsc
from tests.fakes.smsc import HappySMSC
from tests.test_cimd2_link import section
from tests.test_pacing import FakeClock

START = 1_800_000_000.0
SENDER = "gw@sms.example.com"


class Greylisting(Sink):
    """Takes mail, but defers `grey@` (450 greylisted) every time: the recipient's matter."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("grey@"):
            return "450 4.2.0 Try later, greylisted"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


def body(n: int) -> bytes:
    return f"Subject: answer {n}\r\n\r\nanswer {n}\r\n".encode()


@asynccontextmanager
async def worker_on(store: Store, port: int) -> AsyncIterator[OutboxWorker]:
    # Sessions are not kept between mails: a kept one would outlive the relay's stop.
    mailer = SmtpRelayMailer(MailSection(relay=f"127.0.0.1:{port}"), "gw.example", idle_seconds=0)
    worker = OutboxWorker(store, mailer)
    store.outbox.on_queued = worker.wake  # as the daemon wires it: mail queued goes at once
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await worker.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(check: Callable[[], bool], timeout: float = 15) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def rows(store: Store) -> dict[str, tuple[str, int, float]]:
    return {
        rcpt: (state, attempts, due)
        for rcpt, state, attempts, due in store.db.conn.execute(
            "SELECT rcpt, state, attempts, next_attempt_at FROM outbox"
        )
    }


async def test_mail_deferred_while_the_relay_was_down_goes_once_the_relay_takes_a_mail(
    tmp_path: Path,
) -> None:
    # After a relay outage the deferred answers waited out their back-off (up to an hour) though the
    # relay was back. The store's clock stands still here: nothing comes due by time alone.
    store = Store.open(tmp_path / "smsgw.db", clock=lambda: START)
    port = free_port()
    try:
        async with worker_on(store, port):
            sink = Greylisting()
            async with smtp_sink(port, sink):  # the recipient's 450: its back-off stays
                store.outbox.enqueue_mail("answer", SENDER, "grey@acme.pl", body(0))
                await until(
                    lambda: rows(store)["grey@acme.pl"][1] == 1 and rows(store)["grey@acme.pl"][0] == "queued"
                )
            # The relay is down: three answers are deferred for it.
            for n in (1, 2, 3):
                store.outbox.enqueue_mail("answer", SENDER, f"user{n}@acme.pl", body(n))
            await until(lambda: all(rows(store)[f"user{n}@acme.pl"][:2] == ("queued", 1) for n in (1, 2, 3)))
            grey_before = rows(store)["grey@acme.pl"]
            deferred = store.db.conn.execute(
                "SELECT last_error FROM outbox WHERE rcpt = 'user1@acme.pl'"
            ).fetchone()[0]
            assert deferred.startswith("SMTPConnectError("), deferred
            assert all(rows(store)[f"user{n}@acme.pl"][2] >= START + 30 for n in (1, 2, 3))
            with capture_logs() as logs:
                async with smtp_sink(port, sink):  # back: a new mail goes, and takes the others along
                    store.outbox.enqueue_mail("answer", SENDER, "new@acme.pl", body(4))
                    await until(lambda: all(rows(store)[f"user{n}@acme.pl"][0] == "sent" for n in (1, 2, 3)))
                    await until(lambda: len(sink.messages) == 4)
        after = rows(store)
    finally:
        store.close()
    # Their attempt counts were not reset: one failed try and the one that went.
    assert [after[f"user{n}@acme.pl"][:2] for n in (1, 2, 3)] == [("sent", 2)] * 3
    assert after["grey@acme.pl"] == grey_before  # the recipient's deferral keeps its back-off
    assert sorted(rcpt for _, [rcpt], _ in sink.messages) == [
        "new@acme.pl", "user1@acme.pl", "user2@acme.pl", "user3@acme.pl"
    ]  # fmt: skip
    (back,) = [e for e in logs if e["event"] == "outbox.relay_back"]
    assert back["due_again"] == 3


async def test_a_relay_down_logs_one_deferral_line_per_kind_with_the_count_held_back(tmp_path: Path) -> None:
    # 42 mails gave 83 mail.deferred warnings in 70 s; the store's faults log once a second with
    # suppressed=N, and the lines and their counts still add up to every deferral.
    store = Store.open(tmp_path / "smsgw.db", clock=lambda: START)
    port = free_port()  # nobody listens: connection refused
    try:
        with capture_logs() as logs:
            async with worker_on(store, port):
                for n in range(20):
                    store.outbox.enqueue_mail("answer", SENDER, f"user{n}@acme.pl", body(n))
                await until(
                    lambda: all(state == "queued" and tries == 1 for state, tries, _ in rows(store).values())
                )
                await asyncio.sleep(1.5)  # the quiet after the flood says the count held back
    finally:
        store.close()
    deferred = [e for e in logs if e["event"] == "mail.deferred"]
    assert 1 <= len(deferred) <= 3, [(e["mail"], e.get("suppressed")) for e in deferred]
    assert sum(e["suppressed"] + (0 if e.get("summary") else 1) for e in deferred) == 20
    first = deferred[0]
    assert first["suppressed"] == 0 and first["relay_fault"] == "unreachable" and first["kind"] == "answer"
    assert first["error"].startswith("SMTPConnectError(")


async def test_a_wrong_smpp_password_says_what_to_check(tmp_path: Path) -> None:
    async with HappySMSC(password="other") as smsc:
        with capture_logs() as logs:
            async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
                links = LinkView(gw.daemon.dispatcher)
                await gw.until(lambda: bool(links()["main"]["last_error"]))
                error = links()["main"]["last_error"]
    words = 'the SMSC refused the login: check [[smsc]] "main" system_id and password'
    assert error == f"bind refused: ESME_RINVPASWD (0x0E): {words}", error
    (refused,) = [e for e in logs if e["event"] == "smpp.bind_refused"][:1]
    assert refused["error"] == error
    assert "secret" not in repr(logs) + error  # never the password


async def test_a_cimd2_login_refused_says_what_to_check() -> None:
    async with ScriptedSmsc() as peer:
        link, events = Cimd2Link(section(peer.port), password="pw-secret"), RecordingEvents()
        with capture_logs() as logs:
            await link.start(events)
            try:
                conn = await peer.accept()
                login = await conn.next()
                conn.send(Packet.make(Op.LOGIN_RESP, login.number, (P.ERROR_CODE, 100)))
                await events.wait_for(lambda: any(e["event"] == "cimd2.login_refused" for e in logs))
                error = link.stats().last_error
            finally:
                await link.stop(drain=False)
    name = section(peer.port).name
    words = f'the SMSC refused the login: check [[smsc]] "{name}" system_id and password'
    assert error == f"login refused: 100 invalid login: {words}", error
    (refused,) = [e for e in logs if e["event"] == "cimd2.login_refused"]
    assert refused["check"] == words
    assert "pw-secret" not in repr(logs) + error


def test_an_idle_link_is_not_said_slowed_once_the_throttling_is_long_over() -> None:
    # "slowed from 100/s after throttling" stayed on an idle link for ever: only an accepted submit
    # won the rate back. The time without a throttle does, submits or none.
    clock = FakeClock()
    pacer = LinkPacer(10, 100, 1, clock=clock, sleep=clock.sleep)
    for _ in range(8):  # 100/s down to the floor
        clock.now += pacer.pause_left()
        pacer.record(Outcome.THROTTLED)
    slowed = pacer.rate
    assert slowed < 2
    assert allowed({"rate_limit": slowed, "rate_configured": 100.0}).endswith("after throttling")
    clock.now += pacer.pause_left() + 10  # a quiet while: part of the way back
    assert slowed < pacer.rate < 100
    clock.now += 600  # ten quiet minutes, and not one submit
    assert pacer.rate == 100
    assert allowed({"rate_limit": pacer.rate, "rate_configured": 100.0}) == "100/s"
    clock.now += 0.1
    assert sum(pacer.try_ready() for _ in range(20)) == 10  # the configured burst is back too


@asynccontextmanager
async def closing_relay(port: int) -> AsyncIterator[None]:
    """A relay shutting down: 421 to every greeting (RFC 5321 3.8), then the connection closes."""

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"421 4.3.2 relay.test shutting down\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


async def test_mail_deferred_for_a_relay_saying_421_goes_once_the_relay_takes_a_mail(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "smsgw.db", clock=lambda: START)
    port = free_port()
    try:
        async with worker_on(store, port):
            async with closing_relay(port):
                store.outbox.enqueue_mail("answer", SENDER, "user1@acme.pl", body(1))
                await until(lambda: rows(store)["user1@acme.pl"][:2] == ("queued", 1))
            (error,) = store.db.conn.execute("SELECT last_error FROM outbox").fetchone()
            assert error.startswith("SMTPConnectResponseError(421,"), error
            async with smtp_sink(port) as sink:
                store.outbox.enqueue_mail("answer", SENDER, "new@acme.pl", body(2))
                await until(lambda: rows(store)["user1@acme.pl"][0] == "sent")
                await until(lambda: len(sink.messages) == 2)
    finally:
        store.close()
