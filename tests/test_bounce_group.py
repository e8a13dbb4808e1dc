"""One bounce for the SMS of one mail that failed, not one a number (R-6.3, RFC 3464 2.1).

A staff member mailed one message to forty numbers; twelve failed and twelve bounces came. The
failures of one mail now make one multipart/report: its text names each number with its reason, its
delivery-status part has one field group a number, its Subject says how many. A failure while other
SMS of the mail are still in flight waits for them up to `HOLD_SECONDS` on the gateway's clock, and
goes when the last of them ends; a single failure is the bounce it always was.

Real peers: a real SMTP client, the daemon (in this process with an injected clock, or as a process
killed with SIGKILL), the simulator's core over SMPP refusing some numbers at submit and reporting
others undeliverable, a real SMTP server taking the bounces, a real SQLite file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from gateway.config import parse_config
from gateway.store.outboxgroups import GROUP_KIND, HOLD_SECONDS
from smsc.base import ReportStatus
from tests.conftest import (
    DOMAIN,
    STAFF,
    Running,
    Sink,
    config_text,
    free_port,
    mail,
    make_config,
    running_gateway,
    send_blocking,
    smtp_sink,
)
from tests.fakes.smsc import FakeSMSC
from tests.test_intake_workers import stop
from tests.test_mail_expiry import Clock
from tests.test_process import smsgw, start_daemon

REJECTED = f"601123477@{DOMAIN}"  # the SMSC refuses it at submit (invalid destination)
UNDELIVERABLE = f"601123413@{DOMAIN}"  # the SMSC takes it and reports it undeliverable
ALSO_UNDELIVERABLE = f"601123513@{DOMAIN}"
DELIVERED = f"601123400@{DOMAIN}"
BOUNCES = "kind IN ('dsn', 'dsn-group')"


def bounces(sink: Any) -> list[EmailMessage]:
    out = []
    for _from, _rcpts, raw in sink.messages:
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if msg.get_content_type() == "multipart/report":
            out.append(msg)
    return out


def finals(report: EmailMessage) -> list[str]:
    """The Final-Recipient of each per-recipient field group, the address alone."""
    (status,) = [p for p in report.walk() if p.get_content_type() == "message/delivery-status"]
    _per_message, *blocks = status.get_payload()
    return [str(b["Final-Recipient"]).split(";", 1)[1].strip() for b in blocks]


def human(report: EmailMessage) -> str:
    part = report.get_payload()[0]
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def number(address: str) -> str:
    return "+48" + address.split("@")[0]


def outbox_rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    sql = f"SELECT kind, state, attempts, next_attempt_at, message_ref FROM outbox WHERE {BOUNCES}"
    return list(conn.execute(sql + " ORDER BY id"))


def all_sent(rows: list[tuple[Any, ...]]) -> bool:
    return bool(rows) and {row[0] for row in rows} == {"sent"}


def named(conn: sqlite3.Connection) -> list[int]:
    """The SMS the one bounce names (migration 66's `outbox.bounced`)."""
    [(bounced,)] = conn.execute(f"SELECT bounced FROM outbox WHERE {BOUNCES}").fetchall()
    return [int(m) for m in bounced.split(",")]


def smsc_id(conn: sqlite3.Connection, address: str) -> str | None:
    row = conn.execute(
        "SELECT p.smsc_id FROM parts p JOIN messages m ON m.id = p.message_id WHERE m.recipient = ?",
        (number(address),),
    ).fetchone()
    return None if row is None else row[0]


def state_of(conn: sqlite3.Connection, address: str) -> str | None:
    row = conn.execute("SELECT state FROM messages WHERE recipient = ?", (number(address),)).fetchone()
    return None if row is None else str(row[0])


async def test_the_failures_of_one_mail_make_one_bounce_naming_each_number(tmp_path: Path) -> None:
    sink_port = free_port()
    to = [REJECTED, UNDELIVERABLE, DELIVERED, ALSO_UNDELIVERABLE]
    async with FakeSMSC(fail_suffixes=["13"], reject_suffixes=["77"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(to, "Meeting moved to 15:00", subject="Meeting"))).error is None
            await gw.until(lambda: sorted(gw.states()) == ["delivered", "failed", "failed", "failed"])
            await sink.wait(1, timeout=30)
            conn = gw.store.db.conn
            await gw.until(lambda: all_sent([r[1:] for r in outbox_rows(conn)]))
            [report] = bounces(sink)  # one bounce, not three
            [(kind, _state, _attempts, _due, message_ref)] = outbox_rows(conn)
            assert kind == GROUP_KIND and message_ref is None and len(named(conn)) == 3
    failed = [REJECTED, UNDELIVERABLE, ALSO_UNDELIVERABLE]
    assert sorted(finals(report)) == sorted(failed)
    assert str(report["Subject"]) == "Undelivered SMS to 3 numbers"
    text = human(report)
    assert text.startswith("Your SMS could not be delivered to 3 of the numbers your mail was sent to")
    for address in failed:  # each in the words of the bounce of one
        assert f"Your SMS to {number(address)} could not be delivered." in text, text
    assert number(DELIVERED) not in text
    assert text.count("Reason: ") == 3 and text.count("Meeting moved to 15:00") == 1  # the SMS text once
    (status,) = [p for p in report.walk() if p.get_content_type() == "message/delivery-status"]
    statuses = {str(b["Final-Recipient"]).split("; ")[1]: str(b["Status"]) for b in status.get_payload()[1:]}
    assert statuses[REJECTED] == "5.1.1" and statuses[UNDELIVERABLE] == "5.0.0"
    assert report["To"] == STAFF and report["In-Reply-To"]
    (quoted,) = [p for p in report.walk() if p.get_content_type() == "text/rfc822-headers"]
    original = message_from_bytes(quoted.get_payload(decode=True), policy=policy.default)
    assert [a.addr_spec for a in original["To"].addresses] == finals(report)  # the numbers it is about
    assert str(original["Subject"]) == "Meeting"


@asynccontextmanager
async def reports_held(tmp_path: Path, clock: Clock) -> AsyncIterator[tuple[FakeSMSC, Sink, Running]]:
    """The gateway in this process on `clock`, an SMSC refusing numbers ending 77 at submit whose
    reports come only when the test injects them (its own would come in an hour, past any hold),
    and a real SMTP server at the relay taking the bounces."""
    sink_port = free_port()
    async with (
        FakeSMSC(reject_suffixes=["77"], dlr_delay_seconds=3600) as smsc,
        smtp_sink(sink_port) as sink,
    ):
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg, clock) as gw:
            yield smsc, sink, gw


async def test_a_bounce_waits_for_the_sms_in_flight_and_goes_when_the_last_ends(tmp_path: Path) -> None:
    clock = Clock()
    to = [REJECTED, UNDELIVERABLE, DELIVERED]
    async with reports_held(tmp_path, clock) as (smsc, sink, gw):
        conn = gw.store.db.conn
        assert (await gw.send(mail(to, "Pickup at 14:00"))).error is None
        await gw.until(
            lambda: smsc_id(conn, UNDELIVERABLE) is not None and smsc_id(conn, DELIVERED) is not None
        )
        await gw.until(lambda: state_of(conn, REJECTED) == "failed" and len(outbox_rows(conn)) == 1)
        [(kind, state, attempts, due, _ref)] = outbox_rows(conn)
        assert (kind, state, attempts) == ("dsn", "queued", 0) and due > clock()  # held
        assert await smsc.inject_report(str(smsc_id(conn, UNDELIVERABLE)), ReportStatus.FAILED)
        await gw.until(lambda: state_of(conn, UNDELIVERABLE) == "failed")
        [(kind, state, attempts, due, _ref)] = outbox_rows(conn)
        assert (kind, state, attempts) == (GROUP_KIND, "queued", 0) and due > clock()  # joined, held
        assert len(named(conn)) == 2 and sink.messages == []
        assert await smsc.inject_report(str(smsc_id(conn, DELIVERED)), ReportStatus.DELIVERED)
        await sink.wait(1, timeout=30)  # the clock did not move: the delivery let it go
    [report] = bounces(sink)
    assert finals(report) == [REJECTED, UNDELIVERABLE]
    assert str(report["Subject"]) == "Undelivered SMS to 2 numbers"


async def test_a_bounce_held_for_sms_in_flight_goes_when_its_time_is_up(tmp_path: Path) -> None:
    clock = Clock()
    async with reports_held(tmp_path, clock) as (_smsc, sink, gw):
        conn = gw.store.db.conn
        assert (await gw.send(mail([REJECTED, DELIVERED], "Pickup at 14:00"))).error is None
        await gw.until(lambda: state_of(conn, REJECTED) == "failed" and len(outbox_rows(conn)) == 1)
        [(_kind, state, _attempts, due, _ref)] = outbox_rows(conn)
        assert state == "queued" and due > clock() and sink.messages == []
        clock.skew += HOLD_SECONDS + 1
        await sink.wait(1, timeout=30)
        assert state_of(conn, DELIVERED) != "delivered"  # still in flight: it went on its time
    [report] = bounces(sink)  # the bounce of one, as it always was
    assert finals(report) == [REJECTED]
    assert str(report["Subject"]) == f"Undelivered SMS to {number(REJECTED)}"
    assert human(report).startswith(f"Your SMS to {number(REJECTED)} could not be delivered.")


class _StalledRelay:
    """A relay that takes the connection and never greets: the bounce's send hangs in it."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []

    async def __call__(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)


def _db_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db, timeout=10)) as conn:
        return list(conn.execute(sql))


async def _until(predicate: Any, what: str, timeout: float = 30) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


async def sent_once_across_a_sigkill(
    tmp_path: Path,
    smsc_port: int,
    to: list[str],
    *,
    ended: list[str],
    kinds: str,
    what: str,
    first: tuple[str, ...] = (),
) -> Sink:
    """Kills the daemon (a process) while it sends the mail telling of a mail's SMS, then starts it again.

    The daemon runs `smsgw` with the arguments `first` (when given), takes a mail to `to`, and once
    every SMS has ended (`ended`, sorted) and the outbox mail of `kinds` (`what` it is) is in its
    send, held by a relay that never greets, it is killed with SIGKILL: its send was neither done
    nor given up, which is what a restart must not turn into a second copy or a lost one. Started
    again with a real SMTP server at the relay, it sends; that server, with what came, is returned
    after a moment in which a second copy would have come too.
    """
    smtp_port, relay_port = free_port(), free_port()
    config, db = tmp_path / "config.toml", tmp_path / "state" / "smsgw.db"
    config.write_text(config_text(tmp_path, smsc_port=smsc_port, smtp_port=smtp_port, relay_port=relay_port))
    stalled = _StalledRelay()
    relay = await asyncio.start_server(stalled, "127.0.0.1", relay_port)
    proc = await start_daemon(config, smtp_port, new_session=True)
    try:
        if first:
            told = await asyncio.to_thread(smsgw, config, *first)
            assert told.returncode == 0, told.stderr
        result = await asyncio.to_thread(send_blocking, smtp_port, mail(to, "Gate code 4711"), to)
        assert result.error is None
        states = "SELECT state FROM messages ORDER BY state"
        await _until(lambda: [s for (s,) in _db_rows(db, states)] == ended, "every SMS ended")
        active = f"SELECT 1 FROM outbox WHERE {kinds} AND state = 'active'"
        await _until(lambda: bool(_db_rows(db, active)), f"the {what} being sent")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 30)
        relay.close()
        for writer in stalled.writers:
            writer.close()
        await relay.wait_closed()
    async with smtp_sink(relay_port) as sink:
        proc = await start_daemon(config, smtp_port)
        try:
            await sink.wait(1, timeout=30)
            sent = f"SELECT state FROM outbox WHERE {kinds}"
            await _until(lambda: all_sent(_db_rows(db, sent)), f"the {what} recorded sent")
            await asyncio.sleep(0.5)
        finally:
            await stop(proc)
    return sink


async def test_a_daemon_killed_while_sending_the_bounce_sends_it_once_naming_each_number(
    tmp_path: Path,
) -> None:
    to = [REJECTED, UNDELIVERABLE, DELIVERED, ALSO_UNDELIVERABLE]
    async with FakeSMSC(fail_suffixes=["13"], reject_suffixes=["77"]) as smsc:
        ended = ["delivered", "failed", "failed", "failed"]
        sink = await sent_once_across_a_sigkill(
            tmp_path, smsc.port, to, ended=ended, kinds=BOUNCES, what="bounce"
        )
    [report] = bounces(sink)  # once, and every failed number in it
    assert sorted(finals(report)) == sorted([REJECTED, UNDELIVERABLE, ALSO_UNDELIVERABLE])


async def test_erasing_one_number_of_a_queued_bounce_leaves_the_others_in_it(tmp_path: Path) -> None:
    # A bounce of several numbers is about its mail, not one SMS: `smsgw phone forget` finds it by
    # what it says, takes the phone's number out, and the bounce still goes to tell of the others.
    path = tmp_path / "config.toml"
    to = [REJECTED, UNDELIVERABLE]
    async with FakeSMSC(fail_suffixes=["13"], reject_suffixes=["77"]) as smsc:
        path.write_text(config_text(tmp_path, smsc_port=smsc.port))  # nothing listens at the relay
        cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            conn = gw.store.db.conn
            assert (await gw.send(mail(to, "Gate code 4711"))).error is None
            await gw.until(lambda: gw.states() == ["failed", "failed"])
            await gw.until(lambda: [r[:2] for r in outbox_rows(conn)] == [(GROUP_KIND, "queued")])
            forgot = await asyncio.to_thread(smsgw, path, "phone", "forget", number(REJECTED), "--yes")
            [(state, content)] = conn.execute(f"SELECT state, content FROM outbox WHERE {BOUNCES}")
    assert forgot.returncode == 0, forgot.stderr
    assert "  erased: its number in 1 outbox mail naming other numbers too" in forgot.stdout.splitlines()
    assert state == "queued"
    assert number(REJECTED)[3:].encode() not in content and number(UNDELIVERABLE).encode() in content
