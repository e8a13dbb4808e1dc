"""An intake worker that cannot start: the relay port answers `421` at once, not silence.

The daemon's worker processes run `sys.executable`; for a daemon run as a user who may not execute
it (a venv linking into root's 0700 pyenv) every spawn failed with PermissionError and was restarted
for ever, while the port the daemon holds took connections and never greeted them: a mail server
waited out its greeting timeout (Postfix: 300 s) on each try. Here the daemon's interpreter, as its
workers would run it, is a file without the execute bit; once it gets it, the next restart serves.
"""

from __future__ import annotations

import asyncio
import errno
import os
import smtplib
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.intake_refusal import NoWorkerRefusal
from tests.codechanged import code_changed_under
from tests.conftest import DOMAIN, free_port, mail, send_blocking
from tests.fakes.smsc import HappySMSC
from tests.test_intake_workers import log_events, stop, until, worker_config

ROOT = Path(__file__).resolve().parents[1]
# The daemon as `smsgw run`, its workers' interpreter a file given as `argv[1]`.
WRAPPED = """
import sys
sys.executable = sys.argv.pop(1)
from gateway.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def greeting(port: int) -> tuple[int, bytes]:
    """The relay port's first reply (smtplib refuses any but 220 with SMTPConnectError)."""
    try:
        client = smtplib.SMTP("127.0.0.1", port, timeout=30)  # a hang guard, not a timing assertion
    except smtplib.SMTPConnectError as exc:
        return exc.smtp_code, exc.smtp_error
    client.quit()
    return 220, b""


async def test_a_worker_that_cannot_start_leaves_the_port_answering_421(tmp_path: Path) -> None:
    smtp_port = free_port()
    interpreter = tmp_path / "python3"
    interpreter.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    interpreter.chmod(0o600)  # root too may not execute a file without an x bit: PermissionError
    async with HappySMSC() as smsc:
        config = worker_config(tmp_path, smsc.port, smtp_port, 1)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("SMSGW_CONFIG", None)
        log = tmp_path / "daemon.log"
        command = [sys.executable, "-c", WRAPPED, str(interpreter), "--config", str(config), "run"]
        with log.open("ab") as out:
            proc = subprocess.Popen([*command, "--json-logs"], cwd=ROOT, stdout=out, stderr=out, env=env)
        try:
            await until(lambda: log_events(tmp_path, "worker.crashed"), "the failed start")
            code, text = await asyncio.to_thread(greeting, smtp_port)
            assert code == 421 and text.startswith(b"4.3.2"), (code, text)
            assert b"cannot start" in text, text

            interpreter.chmod(0o700)  # mended: the supervisor's next restart serves the port again
            await until(
                lambda: log_events(tmp_path, "daemon.ready") or proc.poll() is not None, "a worker", 1200
            )
            if proc.poll() is not None and (changed := code_changed_under(proc)):
                pytest.skip(f"source files changed while the daemon ran ({', '.join(changed[:3])})")
            assert log_events(tmp_path, "intake.worker_serves_again"), log.read_text()[-3000:]
            res = await asyncio.to_thread(
                send_blocking, smtp_port, mail(f"601123450@{DOMAIN}", "After all"), [f"601123450@{DOMAIN}"]
            )
            assert res.error is None, res.error
            await smsc.wait_for(1, timeout=20)
            await stop(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class _FailingAccept(socket.socket):
    """A listener whose next accept hands back the error of a connection that failed in the queue:
    the kernel does so for a client reset before it was accepted, which no test can time."""

    def __init__(self, error: OSError) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_STREAM)
        self.error = error

    def accept(self) -> tuple[socket.socket, object]:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [ConnectionAbortedError(errno.ECONNABORTED, "aborted"), OSError(errno.EPROTO, "protocol error")],
    ids=["ECONNABORTED", "EPROTO"],
)
async def test_a_connection_failed_in_the_queue_is_passed_over_while_refusing(error: OSError) -> None:
    sock = _FailingAccept(error)
    refusal = NoWorkerRefusal([sock], "gw.example.com", [])
    try:
        refusal.set(True)
        refusal._refuse(sock)  # raised: "Exception in callback" in the daemon's log per connection
        assert refusal.on and refusal.refused == 0
    finally:
        refusal.close()
        sock.close()
