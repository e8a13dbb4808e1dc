"""A mail's `250` still in an intake worker's send buffer when the daemon stops reaches its client.

A real SMTP client on 127.0.0.1 pipelines many commands and a mail without a Message-ID, reading
none of the replies yet (as a busy client does): its receive window fills, and the `250` of the
mail, committed, waits in the worker's transport buffer. The worker used to close its sessions
and exit at once; the buffer died with the process, the client saw the connection end without the
`250`, and its retry would have been a second SMS. The stop now waits for such replies to leave
(`gateway.smtp.stopping`, the same wait as the daemon's own), so the client reading late hears
`250`, then `421`.

The kernel's buffers on loopback grow to megabytes; the listening socket's send buffer (inherited
by each accepted connection) and the client's receive buffer are made small, so that a few hundred
replies fill them instead of tens of thousands.
"""

from __future__ import annotations

import asyncio
import email.policy
import socket
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.smtp import replies
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, running_gateway

EHLOS = 200  # their replies, ~30 kB, fill the small buffers below but not the transport's high water
SMALL_BUFFER = 4096
SHUTTING_DOWN = replies.SHUTTING_DOWN.encode("ascii")


def worker_config(tmp_path: Path) -> str:
    text = config_text(tmp_path, smsc_port=free_port(), smtp_port=0)
    # The EHLOs count as commands without a mail: the limit is raised for them.
    return text.replace("[smtp]\n", "[smtp]\nintake_processes = 1\nmax_commands_without_mail = 1000\n", 1)


def emails_with(db_path: Path, text: str) -> int:
    with closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM emails WHERE text = ?", (text,)).fetchone()
    return int(count)


async def read_to_end(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    said = b""
    while piece := await loop.sock_recv(sock, 65536):
        said += piece
    return said


async def test_a_250_waiting_in_the_workers_buffer_reaches_a_client_reading_late(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cfg = parse_config(worker_config(tmp_path), source="test", base_dir=tmp_path)
    text = f"Answered while the client read nothing {uuid.uuid4().hex}"
    raw = mail(f"601123456@{DOMAIN}", text).as_bytes(policy=email.policy.SMTP)
    assert b"Message-ID" not in raw  # its retry would be a second SMS
    loop = asyncio.get_running_loop()
    async with running_gateway(cfg) as gw:
        assert gw.daemon.intake is not None
        gw.daemon.intake.listeners[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        # A bare socket: asyncio's streams would read the replies into their own buffer meanwhile.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", gw.port))
            pipelined = b"EHLO client.example\r\n" * EHLOS
            pipelined += f"MAIL FROM:<{STAFF}>\r\nRCPT TO:<601123456@{DOMAIN}>\r\nDATA\r\n".encode()
            await loop.sock_sendall(sock, pipelined + raw + b".\r\n")
            # Every EHLO, MAIL and RCPT answered 250, and the mail: its reply written (the worker's
            # counts come with its heartbeat).
            counts = gw.daemon.intake.replies
            await gw.until(lambda: counts["250"] >= EHLOS + 3, timeout=30)
            assert emails_with(cfg.db_path, text) == 1
            worker = gw.daemon.intake.slots[0].proc
            assert worker is not None
            seen = ""

            def waiting_or_gone() -> bool:
                nonlocal seen
                seen += capfd.readouterr().err
                return "smtp.replies_leaving" in seen or worker.poll() is not None

            gw.stop.set()
            # The client reads once the worker either waits for the reply to leave or has ended.
            await gw.until(waiting_or_gone, timeout=30)
            said = await asyncio.wait_for(read_to_end(sock), 30)
    lines = said.splitlines()
    assert sum(1 for line in lines if line.startswith(b"250 ")) == EHLOS + 3, lines[-3:]
    assert lines[-2].startswith(b"250 2.0.0 OK: queued as"), lines[-3:]
    assert lines[-1] == SHUTTING_DOWN, lines[-3:]
