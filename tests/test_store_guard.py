"""The database under the daemon's feet: a file deleted or replaced, a lock held by another
process, a flood of receipts. None may cost an acknowledged mail or freeze the event loop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

from gateway.smtp import replies
from tests.conftest import (
    DOMAIN,
    STAFF,
    SmtpResult,
    free_port,
    mail,
    make_config,
    running_gateway,
    send_blocking,
)
from tests.test_process import start_daemon, write_config


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


def try_send(port: int, text: str, number: str = "601123456") -> SmtpResult:
    """A mail over SMTP; a refused or dropped connection counts as refused, as it would for a client."""
    try:
        return send_blocking(port, mail(to(number), text), [to(number)])
    except OSError as exc:
        return SmtpResult(error=exc)


def smtp_code(res: SmtpResult) -> int | None:
    return getattr(res.error, "smtp_code", None)


def log_text(tmp_path: Path) -> str:
    return (tmp_path / "daemon.log").read_text()


# ---- the database file deleted or replaced while the daemon runs --------------------------------


async def test_database_deleted_while_running_refuses_mail_and_exits_non_zero(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    proc = await start_daemon(config, smtp_port)
    try:
        assert (await asyncio.to_thread(try_send, smtp_port, "Before")).error is None
        (tmp_path / "state" / "smsgw.db").unlink()
        after = await asyncio.to_thread(try_send, smtp_port, "After the delete")
        assert after.error is not None, "a mail written into a deleted file was answered 250"
        assert proc.wait(timeout=30) == 1
        assert '"store.file_replaced"' in log_text(tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_database_replaced_by_a_copy_refuses_mail_exits_and_restarts_on_the_copy(
    tmp_path: Path,
) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    proc = await start_daemon(config, smtp_port)
    try:
        assert (await asyncio.to_thread(try_send, smtp_port, "In the backup")).error is None
        copy = tmp_path / "state" / "backup.db"
        with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
            src.backup(dst)
        src.close()
        dst.close()
        os.replace(copy, db)  # what restoring a backup with mv does
        after = await asyncio.to_thread(try_send, smtp_port, "After the replace")
        assert after.error is not None, "a mail written into a replaced file was answered 250"
        assert proc.wait(timeout=30) == 1
        assert '"store.file_replaced"' in log_text(tmp_path)
        # The service manager starts it again: on the copy, which is whole and takes mail.
        proc = await start_daemon(config, smtp_port)
        assert (await asyncio.to_thread(try_send, smtp_port, "On the copy")).error is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        with sqlite3.connect(db) as check:
            texts = [r[0] for r in check.execute("SELECT text FROM messages ORDER BY id")]
        check.close()
        assert texts == ["In the backup", "On the copy"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---- another process holds the write lock -------------------------------------------------------


def hold_write_lock(path: Path, locked: threading.Event, released: threading.Event, seconds: float) -> None:
    """What a long admin command or a backup tool does to the daemon: hold the write lock."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()
        released.set()


def greeting_latencies(port: int, until: threading.Event) -> list[float]:
    """Seconds from connect to the first byte of the banner, for new clients one after another."""
    seen: list[float] = []
    while not until.is_set():
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            assert sock.recv(64).startswith(b"220")
        seen.append(time.monotonic() - start)
        until.wait(0.05)
    return seen


async def test_database_locked_by_another_process_does_not_freeze_the_loop(tmp_path: Path) -> None:
    async with running_gateway(make_config(tmp_path, smsc_port=free_port())) as gw:
        locked, released = threading.Event(), threading.Event()
        holder = asyncio.create_task(asyncio.to_thread(hold_write_lock, gw.store.path, locked, released, 3.0))
        assert await asyncio.to_thread(locked.wait, 10)
        sending = asyncio.create_task(asyncio.to_thread(try_send, gw.port, "While locked"))
        latencies = await asyncio.to_thread(greeting_latencies, gw.port, released)
        await holder
        res = await sending
        assert max(latencies) < 1.0, f"greetings waited for the lock: {latencies}"
        assert len(latencies) >= 3
        assert res.error is None or smtp_code(res) == 451, res.error
        assert (await gw.send(mail(to("601123457"), "After the lock"))).error is None


async def test_mail_gets_451_when_the_database_stays_locked_past_the_bound(tmp_path: Path) -> None:
    async with running_gateway(make_config(tmp_path, smsc_port=free_port())) as gw:
        gw.store.db.interactive_patience = 0.3  # the bound is a few seconds in production
        locked, released = threading.Event(), threading.Event()
        holder = asyncio.create_task(asyncio.to_thread(hold_write_lock, gw.store.path, locked, released, 1.5))
        assert await asyncio.to_thread(locked.wait, 10)
        res = await asyncio.to_thread(try_send, gw.port, "While locked")
        still_locked = not released.is_set()
        await holder
        assert still_locked  # the answer came while the lock was held, not after
        assert smtp_code(res) == 451
        assert replies.STORE_BUSY.split(" ", 1)[1] in str(res.error)
        assert (await gw.send(mail(to("601123457"), "After the lock"))).error is None
        assert [r[0] for r in gw.store.db.conn.execute("SELECT text FROM messages")] == ["After the lock"]


# ---- a flood of receipts -----------------------------------------------------------------------

FLOOD = 20_000


async def smtp_reply(reader: asyncio.StreamReader) -> bytes:
    """One (possibly multi-line) SMTP reply; returns its last line."""
    while True:
        line = await asyncio.wait_for(reader.readline(), 30)
        if line[3:4] != b"-":
            return line


async def test_smtp_is_answered_between_flushes_of_a_receipt_flood(tmp_path: Path) -> None:
    # Ordering, not wall time: how many receipts were written before each SMTP answer.
    async with running_gateway(make_config(tmp_path, smsc_port=free_port())) as gw:
        store = gw.store
        written = 0
        at_commit: int | None = None  # receipts written when the mail's transaction was seen committed

        def receipt(i: int) -> None:
            nonlocal written, at_commit
            store.queue.record_report("main", f"flood-{i}", "DELIVRD", None, "")
            written += 1
            if at_commit is None and store.db.conn.execute("SELECT count(*) FROM emails").fetchone()[0]:
                at_commit = written

        flood = [asyncio.ensure_future(store.write(lambda i=i: receipt(i))) for i in range(FLOOD)]
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        banner = await smtp_reply(reader)
        at_banner = written
        for command in ("EHLO client.test", f"MAIL FROM:<{STAFF}>", f"RCPT TO:<{to('601123456')}>"):
            writer.write(command.encode() + b"\r\n")
            assert (await smtp_reply(reader))[:1] == b"2"
        writer.write(b"DATA\r\n")
        assert (await smtp_reply(reader)).startswith(b"354")
        content = mail(to("601123456"), "During the flood").as_bytes().replace(b"\n", b"\r\n")
        writer.write(content + b"\r\n.\r\n")
        before_end_of_data = written
        answer = await smtp_reply(reader)
        at_answer = written
        writer.write(b"QUIT\r\n")
        writer.close()
        await asyncio.gather(*flood)
        assert banner.startswith(b"220") and answer.startswith(b"250"), answer
        assert at_banner < FLOOD // 4, f"the greeting waited for {at_banner} receipts"
        assert at_answer < FLOOD, "the mail was answered only after the whole flood"
        assert at_commit is not None and at_commit - before_end_of_data < FLOOD // 10, (
            f"the mail was committed after {at_commit} receipts, {before_end_of_data} before its end"
        )
