"""Ctrl-C in the daemon's terminal: SIGINT reaches its intake workers too (one process group), and
is the daemon's to act on.

A worker stopped on it at once, beside its daemon, and closed its copy of the relay listener before
the daemon's orderly stop: 6 of 629 SMTP sessions in flight got a connection reset instead of
`421`. The worker now ignores SIGINT and stops when the daemon tells it (`q`), on SIGTERM (systemd's,
tested in test_intake_workers.py), or when its daemon is gone (kill -9, ibid.).
"""

from __future__ import annotations

import asyncio
import os
import signal
from contextlib import suppress
from pathlib import Path

from gateway.smtp import replies
from tests.conftest import DOMAIN, STAFF, free_port
from tests.test_intake_workers import alive, log_events, until, worker_config, worker_pids
from tests.test_process import start_daemon


async def command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes) -> bytes:
    writer.write(line + b"\r\n")
    while (reply := await asyncio.wait_for(reader.readline(), 10))[3:4] == b"-":
        pass
    return reply


async def test_ctrl_c_stops_the_workers_through_the_daemon_and_sessions_hear_421(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = worker_config(tmp_path, free_port(), smtp_port, 1)
    proc = await start_daemon(config, smtp_port, new_session=True)  # a process group, as a terminal's
    writer = None
    try:
        await until(lambda: len(log_events(tmp_path, "intake.worker_serving")) == 1, "the worker serving")
        (worker,) = worker_pids(tmp_path)
        reader, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
        assert (await reader.readline()).startswith(b"220")
        assert (await command(reader, writer, b"EHLO a.example")).startswith(b"250")
        assert (await command(reader, writer, b"MAIL FROM:<" + STAFF.encode() + b">")).startswith(b"250")
        # The worker's share of a Ctrl-C, seen before the daemon's: it goes on serving.
        os.kill(worker, signal.SIGINT)
        await asyncio.sleep(1.0)
        assert alive(worker) and worker_pids(tmp_path) == [worker]
        assert log_events(tmp_path, "intake.worker_stopped") == []
        rcpt = f"RCPT TO:<601123456@{DOMAIN}>".encode()
        assert (await command(reader, writer, rcpt)).startswith(b"250")
        # Ctrl-C in the terminal: the daemon stops, and stops its worker, whose session hears 421.
        os.killpg(proc.pid, signal.SIGINT)
        heard = await asyncio.wait_for(reader.read(), 30)
        assert heard.startswith(replies.SHUTTING_DOWN.encode()), heard
        assert await asyncio.to_thread(proc.wait, 30) == 0
        await until(lambda: not alive(worker), "the worker gone")
        assert len(log_events(tmp_path, "intake.worker_stopped")) == 1
        assert log_events(tmp_path, "worker.crashed") == []
    finally:
        if writer is not None:
            writer.close()
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
