"""At a stop, a mail whose commit has just ended is answered before the other sessions hear `421`.

The stop's last steps are the store's drain, then `421` to every session left (RFC 5321 3.8). The
drain can end on the loop turn the fsync's outcome arrives, before the DATA handler waiting for it
resumes: the `421` went out first, as the reply to a mail that was committed, and its client's retry
made a second SMS of a mail without a Message-ID. A real client on the real relay listener; the
WAL's fsync of that mail held in its thread until the test lets it go.
"""

from __future__ import annotations

import asyncio
import os
import threading
from email.policy import SMTP
from pathlib import Path

import pytest

from gateway.smtp import replies
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway
from tests.test_process import smtp_reply

RCPT = f"601123456@{DOMAIN}"


async def open_mail(port: int, body: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw session with its whole mail sent, the end of data included; its reply not read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await smtp_reply(reader)).startswith(b"220")
    for line in (b"EHLO client.example", b"MAIL FROM:<anna@acme.example>", f"RCPT TO:<{RCPT}>".encode()):
        writer.write(line + b"\r\n")
        assert (await smtp_reply(reader)).startswith(b"250")
    writer.write(b"DATA\r\n")
    assert (await smtp_reply(reader)).startswith(b"354")
    writer.write(body + b".\r\n")
    await writer.drain()
    return reader, writer


def hold_wal_fsync(
    monkeypatch: pytest.MonkeyPatch, wal_fd: int, needle: bytes
) -> tuple[threading.Event, threading.Event]:
    """The WAL's fsync, once the WAL holds `needle` (a mail's text: not some other write's), waits
    until the second event is set; the first says it has begun."""
    real_fsync = os.fsync
    begun, release = threading.Event(), threading.Event()

    def fsync(fd: int) -> None:
        if fd == wal_fd and not release.is_set() and needle in os.pread(fd, os.fstat(fd).st_size, 0):
            begun.set()
            release.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return begun, release


async def test_the_stop_answers_a_mail_committed_at_its_drain_before_the_421s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_gateway(make_config(tmp_path, smsc_port=free_port())) as gw:
        sessions = gw.daemon.gate.sessions
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer: asyncio.StreamWriter | None = None
        text = "Committed as the daemon stops"
        begun, release = hold_wal_fsync(monkeypatch, gw.store.db._wal_fd, text.encode())
        try:
            assert (await smtp_reply(idle_reader)).startswith(b"220")
            reader, writer = await open_mail(gw.port, mail(RCPT, text).as_bytes(policy=SMTP))
            assert await asyncio.to_thread(begun.wait, 10), "the mail's fsync was not held"
            release.set()
            # The drain's own look, every loop turn: it ends on the turn the fsync's outcome arrives,
            # before the handler it wakes has run. Then the stop's order: the replies owed, the 421s.
            while gw.store.db._sync_running:
                await asyncio.sleep(0)
            assert await sessions.answered(5) == 0
            sessions.close_all()
            assert (await asyncio.wait_for(smtp_reply(reader), 5)).startswith(b"250")
            said = await asyncio.wait_for(smtp_reply(idle_reader), 5)
            assert said == replies.SHUTTING_DOWN.encode() + b"\r\n"
        finally:
            release.set()
            for w in (writer, idle_writer):
                if w is not None:
                    w.close()


async def test_a_mail_still_being_answered_at_the_421s_gets_no_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its mail may be committed or not: no reply at all (`gateway.smtp.outcome`), never the 421 that
    # has its client send it again as surely not taken.
    async with running_gateway(make_config(tmp_path, smsc_port=free_port())) as gw:
        text = "Being committed at the 421s"
        begun, release = hold_wal_fsync(monkeypatch, gw.store.db._wal_fd, text.encode())
        reader, writer = await open_mail(gw.port, mail(RCPT, text).as_bytes(policy=SMTP))
        try:
            assert await asyncio.to_thread(begun.wait, 10), "the mail's fsync was not held"
            assert gw.daemon.gate.sessions.close_all() == 1
            assert await asyncio.wait_for(smtp_reply(reader), 5) == b""
        finally:
            release.set()
            writer.close()
