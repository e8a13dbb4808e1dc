"""A `maildir:` relay writes each outbox mail once, even when the gateway is killed (kill -9) after
the file landed and before the mail was marked sent: the next start sends the mail again, finds the
file of its first send, and marks it sent without a second copy for the user to read twice.

The outbox worker runs in a process of its own on a real SQLite file and is killed with SIGKILL from
inside the send (no peer can say when the file landed); the next start's worker runs here.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.mailer import CaptureMailer
from gateway.outboxworker import OutboxWorker
from gateway.store.db import Store

ROOT = Path(__file__).resolve().parents[1]
ANSWER = (
    b"From: SMS gateway <gw@sms.example.com>\r\nTo: staff@acme.example\r\nSubject: SMS answer\r\n"
    b"Message-ID: <1.sms-reply@sms.example.com>\r\n\r\nTak, bede o 10:00\r\n"
)

# The worker of a daemon, killed at `at`: once the file is in place ("placed", before the mark
# sent), once it is written under its temporary name ("written", before it is put in place), or
# once it is linked to its name ("linked", its temporary name, the SMS text, still there).
_KILLED_WORKER = """
import asyncio, os, signal, sys
from pathlib import Path

from gateway.mailer import CaptureMailer
from gateway.outboxworker import OutboxWorker
from gateway.store.db import Store

db, directory, at = sys.argv[1:4]


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class DiesOncePlaced(CaptureMailer):
    async def send(self, mail_from, rcpt, content):
        await super().send(mail_from, rcpt, content)
        die()


import gateway.capturemail as capturemail

placed = capturemail._place


def place_then_die(tmp, final):
    placed(tmp, final)
    die()


if at == "written":
    capturemail._place = lambda tmp, final: die()
elif at == "linked":
    capturemail._place = place_then_die


async def main() -> None:
    store = Store.open(Path(db))
    await OutboxWorker(store, DiesOncePlaced(Path(directory))).run()


asyncio.run(main())
"""


def state_of(store: Store, mail_id: int) -> str:
    return str(store.db.conn.execute("SELECT state FROM outbox WHERE id = ?", (mail_id,)).fetchone()[0])


def mails(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.eml"))


async def run_until_sent(store: Store, directory: Path, mail_id: int) -> None:
    worker = OutboxWorker(store, CaptureMailer(directory))
    task = asyncio.create_task(worker.run())
    deadline = time.monotonic() + 30  # a bound on a hang, no assertion on speed
    while state_of(store, mail_id) != "sent" and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.02)
    assert await worker.stop(timeout=5.0)
    await task


@pytest.mark.parametrize("at", ["placed", "written", "linked"])
async def test_a_mail_written_before_a_kill_is_not_written_again(tmp_path: Path, at: str) -> None:
    db, directory = tmp_path / "smsgw.db", tmp_path / "mail"
    store = Store.open(db)
    try:
        mail_id = store.outbox.enqueue_mail("reply", "gw@sms.example.com", "staff@acme.example", ANSWER)
    finally:
        store.close()
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_WORKER, str(db), str(directory), at],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert len(mails(directory)) == (0 if at == "written" else 1)
    assert len(list(directory.glob(".*.tmp"))) == (0 if at == "placed" else 1)

    store = Store.open(db)
    try:
        assert state_of(store, mail_id) == "active"  # not marked: the start sends it again
        assert store.outbox.recover_mail() == 1
        with capture_logs() as logs:
            await run_until_sent(store, directory, mail_id)
        assert state_of(store, mail_id) == "sent"
    finally:
        store.close()
    (only,) = mails(directory)
    assert only.read_bytes().endswith(ANSWER)
    assert not list(directory.glob(".*")), "a temporary file was left behind"
    found = [e for e in logs if e["event"] == "mail.capture_exists"]
    assert [e["mail"] for e in found] == ([] if at == "written" else [mail_id])
