"""An admin's retry of an SMS whose bounce is held for its mail's other SMS (R-6.3).

A bounce waits up to `HOLD_SECONDS` for the other SMS of its mail; an admin who retried the failed
SMS in that time, and saw it delivered, got its sender told it was undelivered: the held bounce was
sent as built. The retry (`smsgw queue retry`, a process of its own, as the admin runs it) now takes
the SMS out of its mail's unsent bounce in its own transaction: a bounce of it alone is dropped, one
naming other numbers too is built again without it.

Real peers: the daemon in this process on an injected clock, the simulator over SMPP with the reports
injected when the test says, the CLI as a process, a real SMTP server taking the bounces, a real
SQLite file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path

from gateway.config import parse_config
from gateway.newholder import WHY_START, said_before, said_first
from smsc.base import ReportStatus
from tests.conftest import DOMAIN, Running, Sink, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import FakeSMSC
from tests.test_bounce_group import all_sent, bounces, finals, human, number, outbox_rows, smsc_id, state_of
from tests.test_mail_expiry import Clock
from tests.test_process import smsgw

U1 = f"601123413@{DOMAIN}"
U2 = f"601123513@{DOMAIN}"
D = f"601123400@{DOMAIN}"


def message_id(conn: sqlite3.Connection, address: str) -> int:
    row = conn.execute("SELECT id FROM messages WHERE recipient = ?", (number(address),)).fetchone()
    return int(row[0])


async def retried(path: Path, conn: sqlite3.Connection, address: str) -> None:
    done = await asyncio.to_thread(smsgw, path, "queue", "retry", str(message_id(conn, address)))
    assert done.returncode == 0, done.stderr


@asynccontextmanager
async def reports_injected(tmp_path: Path) -> AsyncIterator[tuple[Path, FakeSMSC, Sink, Running]]:
    """The gateway in this process on an injected clock, its config file where the CLI (as the admin
    runs it) reads it, an SMSC whose reports come only when the test injects them (its own would come
    in an hour, past any hold), and a real SMTP server at the relay taking what the gateway mails."""
    path, sink_port = tmp_path / "config.toml", free_port()
    async with FakeSMSC(dlr_delay_seconds=3600) as smsc, smtp_sink(sink_port) as sink:
        path.write_text(config_text(tmp_path, smsc_port=smsc.port, relay_port=sink_port))
        cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
        async with running_gateway(cfg, Clock()) as gw:
            yield path, smsc, sink, gw


async def test_a_number_retried_while_its_bounce_is_held_is_not_reported_once_delivered(
    tmp_path: Path,
) -> None:
    async with reports_injected(tmp_path) as (path, smsc, sink, gw):
        conn = gw.store.db.conn
        assert (await gw.send(mail([U1, D], "Pickup at 14:00", subject="Pickup"))).error is None
        await gw.until(lambda: all(smsc_id(conn, a) for a in (U1, D)))
        first = str(smsc_id(conn, U1))
        assert await smsc.inject_report(first, ReportStatus.FAILED)
        await gw.until(lambda: state_of(conn, U1) == "failed" and len(outbox_rows(conn)) == 1)
        await retried(path, conn, U1)
        assert outbox_rows(conn) == []  # its bounce, of it alone, dropped with the retry
        await gw.until(lambda: smsc_id(conn, U1) not in (None, first))
        assert await smsc.inject_report(str(smsc_id(conn, U1)), ReportStatus.DELIVERED)
        assert await smsc.inject_report(str(smsc_id(conn, D)), ReportStatus.DELIVERED)
        await gw.until(lambda: state_of(conn, U1) == "delivered" and state_of(conn, D) == "delivered")
        assert outbox_rows(conn) == []  # D's delivery would have let the old bounce go
    assert bounces(sink) == []


async def test_a_held_bounce_of_several_numbers_is_built_again_without_the_one_retried(
    tmp_path: Path,
) -> None:
    async with reports_injected(tmp_path) as (path, smsc, sink, gw):
        conn = gw.store.db.conn
        assert (await gw.send(mail([U1, U2, D], "Pickup at 14:00", subject="Pickup"))).error is None
        await gw.until(lambda: all(smsc_id(conn, a) for a in (U1, U2, D)))
        first = str(smsc_id(conn, U1))
        assert await smsc.inject_report(first, ReportStatus.FAILED)
        assert await smsc.inject_report(str(smsc_id(conn, U2)), ReportStatus.FAILED)
        await gw.until(lambda: state_of(conn, U1) == "failed" and state_of(conn, U2) == "failed")
        await gw.until(lambda: len(outbox_rows(conn)) == 1 and outbox_rows(conn)[0][0] == "dsn-group")
        await retried(path, conn, U1)
        # Of U2 alone now: the bounce of one, about that SMS, as if it had never grown.
        [(kind, state, _attempts, _due, about)] = outbox_rows(conn)
        assert (kind, state, about) == ("dsn", "queued", message_id(conn, U2))
        await gw.until(lambda: smsc_id(conn, U1) not in (None, first))
        assert await smsc.inject_report(str(smsc_id(conn, U1)), ReportStatus.DELIVERED)
        assert await smsc.inject_report(str(smsc_id(conn, D)), ReportStatus.DELIVERED)
        await sink.wait(1, timeout=30)  # the last SMS in flight ended: the held bounce goes
        await gw.until(lambda: all_sent([r[1:] for r in outbox_rows(conn)]))
        assert state_of(conn, U1) == "delivered"
    [report] = bounces(sink)
    assert finals(report) == [U2]
    assert str(report["Subject"]) == f"Undelivered SMS to {number(U2)}"
    assert number(U1) not in human(report) and number(U1)[3:] not in report.as_string()


async def test_a_delivered_sms_is_not_sent_again_and_stays_in_its_held_confirmation(tmp_path: Path) -> None:
    # The confirmation's side of the same window: a delivered (or unreported) SMS has nothing a retry
    # sends again, so nothing takes it out of the confirmation waiting for the mail's other SMS.
    async with reports_injected(tmp_path) as (path, smsc, _sink, gw):
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", dlr_mail="all"))
        conn = gw.store.db.conn
        assert (await gw.send(mail([D, U1], "Pickup at 14:00", subject="Pickup"))).error is None
        await gw.until(lambda: all(smsc_id(conn, a) for a in (U1, D)))
        assert await smsc.inject_report(str(smsc_id(conn, D)), ReportStatus.DELIVERED)
        held = "SELECT kind, state, bounced FROM outbox WHERE mail_from <> ''"
        await gw.until(lambda: len(conn.execute(held).fetchall()) == 1)
        before = conn.execute(held).fetchall()
        refused = await asyncio.to_thread(smsgw, path, "queue", "retry", str(message_id(conn, D)))
        assert refused.returncode != 0 and "nothing sent again" in refused.stderr, refused.stderr
        assert conn.execute(held).fetchall() == before == [("delivered", "queued", str(message_id(conn, D)))]


def test_the_line_saying_why_a_report_came_here_is_read_back_when_it_is_built_again() -> None:
    # `regroup` keeps the line `newholder.readdressed` put first (a report sent to the account's notify
    # address because the sender's address was given to someone else).
    plain = EmailMessage()
    plain["Subject"] = "Undelivered SMS to 2 numbers"
    plain.set_content("Your SMS could not be delivered to 2 of the numbers your mail was sent to.")
    why = f"{WHY_START}ola@acme.example of account acme. That address was added again as a user."
    assert said_before(said_first(plain.as_bytes(), why)) == why
    assert said_before(plain.as_bytes()) is None
