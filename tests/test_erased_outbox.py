"""After `smsgw phone forget`: a mail about the phone erased whole is never sent, and the output
names the copies of its texts the gateway itself keeps outside the database.

An erased outbox mail holds the marker alone, no From, Subject, Date or Message-ID. The erasure
failed only the queued ones: the answer mail the relay was holding (a slow content filter) when the
phone was forgotten went back to the queue on the relay's 451 and was sent on the back-off as that
one line; a failed one went on `smsgw outbox retry ID` and `--all`. Real peers: the running daemon
with the built-in simulator, an aiosmtpd relay on 127.0.0.1 (slow, then 451), `smsgw` as another
process on the same SQLite file (`phone forget`, `outbox retry`, `backup`, `restore`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from gateway.privacy.erasure import NOT_SENT
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, Running, Sink, free_port, mail, running_gateway, smtp_sink
from tests.test_phone_privacy import ACME_SENDER, ERASED, cli, written_two_way
from tests.test_two_way import PHONE

ANSWER_WORD = "Zurawinka"  # in the phone's answer, found nowhere else
ERASED_MAIL = ERASED.encode()  # an outbox mail erased whole: the marker and nothing else
WHY = NOT_SENT.removeprefix("not sent: ")  # its text was erased at the phone's request
REFUSED = f"is not sent again: {WHY}"


class SlowRelay(Sink):
    """The company relay behind a slow content filter: the first mail's final dot is answered only
    once `release` is set, and then with 451; every later mail is taken and kept."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.first = True

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.first:
            self.first = False
            self.holding.set()
            await self.release.wait()
            return "451 4.7.1 Try again later"
        return await super().handle_DATA(server, session, envelope)


async def phone_answers(gw: Running) -> None:
    """The staff member's SMS to the phone, delivered, and the phone's answer to it: mailed to them."""
    core, conn = gw.daemon.simulator.core, gw.store.db.conn
    assert (await gw.send(mail(f"601123456@{DOMAIN}", "Jutro o 10"))).error is None
    await gw.until(lambda: len(core.records) == 1)
    await gw.until(lambda: conn.execute("SELECT state FROM messages").fetchone() == ("delivered",))
    command = {"op": "mo", "source": PHONE, "destination": ACME_SENDER, "text": f"Dobrze {ANSWER_WORD}"}
    assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
    await gw.until(lambda: reply(conn) is not None)


def reply(conn: sqlite3.Connection) -> tuple[int, str, str | None] | None:
    return conn.execute("SELECT id, state, last_error FROM outbox WHERE kind = 'reply'").fetchone()


def deferred(row: tuple[int, str, str | None] | None) -> bool:
    return row is not None and row[1] == "queued" and row[2] is not None


def waiting(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM outbox WHERE state IN ('queued', 'active')").fetchone()[0]


def marker_mails(relay: Sink) -> list[bytes]:
    return [raw for _, _, raw in relay.messages if ERASED_MAIL in raw or ANSWER_WORD.encode() in raw]


async def test_an_answer_erased_while_the_relay_holds_it_is_not_sent_after_the_relays_451(
    tmp_path: Path,
) -> None:
    port = free_port()
    path, cfg = written_two_way(tmp_path, port)
    async with smtp_sink(port, SlowRelay()) as relay, running_gateway(cfg) as gw:
        conn = gw.store.db.conn
        await phone_answers(gw)
        await asyncio.wait_for(relay.holding.wait(), 20)
        mail_id, state, _ = reply(conn) or (0, "", None)
        assert state == "active"  # in the relay's hands, its dot not yet answered
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        relay.release.set()  # 451: the send failed
        await gw.until(lambda: (reply(conn) or (0, "active"))[1] != "active")
        settled = reply(conn)
        one = await cli(path, "outbox", "retry", str(mail_id))
        every = await cli(path, "outbox", "retry", "--all")
        await gw.until(lambda: waiting(conn) == 0)  # what the retries queued has been sent
        content = conn.execute("SELECT content FROM outbox WHERE id = ?", (mail_id,)).fetchone()[0]
        final = reply(conn)
    # The one line with no header never reached the staff member, however retried.
    assert marker_mails(relay) == [], marker_mails(relay)
    assert forgot.returncode == 0, forgot.stderr
    assert (
        "  erased: 1 outbox mail about it (1 queued: not sent; 1 in a send at this moment, which the relay"
        " may still take)" in forgot.stdout.splitlines()
    ), forgot.stdout
    assert settled == (mail_id, "failed", NOT_SENT)  # the relay's 451 did not queue it again
    assert one.returncode == 1, (one.stdout, one.stderr)
    assert f"mail {mail_id} {REFUSED}" in one.stderr
    assert every.returncode == 0, every.stderr
    assert "0 mail(s) will be sent again now" in every.stdout
    assert f"1 mail(s) not sent again: {WHY}" in every.stderr, every.stderr
    assert final == (mail_id, "failed", NOT_SENT) and content == ERASED_MAIL


async def test_an_answer_failed_while_the_relay_was_down_is_not_sent_on_a_retry(tmp_path: Path) -> None:
    port = free_port()
    path, cfg = written_two_way(tmp_path, port)  # nothing listens on the relay's port yet
    async with running_gateway(cfg) as gw:
        conn = gw.store.db.conn
        await phone_answers(gw)
        # Its first send failed (connection refused): it waits out its back-off.
        await gw.until(lambda: deferred(reply(conn)))
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        mail_id, *erased = reply(conn) or (0,)
        async with smtp_sink(port) as relay:  # the relay is back
            one = await cli(path, "outbox", "retry", str(mail_id))
            every = await cli(path, "outbox", "retry", "--all")
            await gw.until(lambda: waiting(conn) == 0)
            final = reply(conn)
    assert marker_mails(relay) == [], marker_mails(relay)
    assert forgot.returncode == 0, forgot.stderr
    assert erased == ["failed", NOT_SENT]
    assert one.returncode == 1 and f"mail {mail_id} {REFUSED}" in one.stderr, (one.stdout, one.stderr)
    assert every.returncode == 0 and f"1 mail(s) not sent again: {WHY}" in every.stderr, every.stderr
    assert final == (mail_id, "failed", NOT_SENT)


async def test_the_worker_never_sends_a_mail_that_is_the_marker_alone(tmp_path: Path) -> None:
    """Belt and braces: a mail erased whole that is queued all the same (erased by an earlier
    version, which left a held one `active`) fails at its claim, with no copy to a fallback."""
    port = free_port()
    _, cfg = written_two_way(tmp_path, port)
    async with smtp_sink(port) as relay, running_gateway(cfg) as gw:
        outbox, conn = gw.store.outbox, gw.store.db.conn
        mail_id = await gw.store.write(
            lambda: outbox.enqueue_mail("reply", f"sms@{DOMAIN}", STAFF, ERASED_MAIL)
        )
        await gw.until(lambda: waiting(conn) == 0)
        # A mail queued after it goes: the worker went on.
        await gw.store.write(
            lambda: outbox.enqueue_mail("reply", f"sms@{DOMAIN}", STAFF, b"Subject: x\r\n\r\nok\r\n")
        )
        await relay.wait(1)
        rows = conn.execute("SELECT id, state, last_error FROM outbox ORDER BY id").fetchall()
    assert rows[0] == (mail_id, "failed", NOT_SENT) and len(rows) == 2, rows
    assert [raw for _, _, raw in relay.messages if ERASED_MAIL in raw] == []


async def test_forget_names_the_database_a_restore_set_aside_and_the_simulator_log(tmp_path: Path) -> None:
    path, cfg = written_two_way(tmp_path, free_port())
    async with running_gateway(cfg) as gw:
        conn = gw.store.db.conn
        assert (await gw.send(mail(f"601123456@{DOMAIN}", f"Termin {ANSWER_WORD}"))).error is None
        await gw.until(lambda: conn.execute("SELECT state FROM messages").fetchone() == ("delivered",))
    backup = tmp_path / "backup.db"
    assert (r := await cli(path, "backup", str(backup))).returncode == 0, r.stderr
    assert (r := await cli(path, "restore", str(backup))).returncode == 0, r.stderr
    aside = sorted(cfg.state_dir.glob("smsgw.db.before-restore-*"))
    kept = {p: p.read_bytes() for p in aside}
    log = tmp_path / "sim.jsonl"
    assert aside and ANSWER_WORD.encode() in log.read_bytes()
    asked = await cli(path, "phone", "forget", PHONE)
    forgot = await cli(path, "phone", "forget", PHONE, "--yes")
    assert asked.returncode == 1 and forgot.returncode == 0, (asked.stderr, forgot.stderr)
    for said in (asked.stdout, forgot.stdout):
        for p in aside:
            assert f"  kept: {p}, " in said and "the database a restore set aside, holds the texts" in said, (
                said
            )
        assert f"  kept: {log}, the simulator's log, holds the texts of the SMS it took: delete it" in said
    assert "delete it, or erase them in it" in forgot.stdout
    assert {p: p.read_bytes() for p in aside} == kept  # named, not opened
