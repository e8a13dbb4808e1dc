"""A mail whose commit is under way when the daemon stops (F10) or is killed (F2), as real processes.

tests/faults/fsynchold.c holds the fsync of the one file that holds the mail, from outside the
daemon: before the real call (nothing is on the disk yet) or after it (on the disk, nobody told).
With the relay port in the daemon and in an intake worker, the client must hear `250` for a mail
that is committed, or nothing at all: never a `421` or `451` that makes its retry a second SMS.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import json
import os
import signal
import sqlite3
import subprocess
import uuid
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import DOMAIN, free_port, mail, send_blocking
from tests.fakes.smsc import HappySMSC
from tests.test_process import (
    build_fsynchold,
    open_data,
    send_marker,
    smtp_reply,
    start_daemon,
    until_refused,
    wait_for_text,
    write_config,
)

# Past the 10 s an intake worker gave its mails in progress at a stop (it then said 421 to one the
# daemon went on to commit), within the 20 s after which the daemon kills a worker still running.
HOLD_SECONDS = 12.0
INTAKE = pytest.mark.parametrize("intake_processes", [0, 1], ids=["relay-in-daemon", "relay-in-worker"])


def held_env(shim: Path, tmp_path: Path, token: str, *, after: bool = False) -> dict[str, str]:
    """The daemon's environment: fsyncs of a file holding `token` wait while tmp_path/hold-fsync exists."""
    return {
        **os.environ,
        "LD_PRELOAD": " ".join(filter(None, [str(shim), os.environ.get("LD_PRELOAD")])),
        "FSYNCHOLD_TRIGGER": str(tmp_path / "hold-fsync"),
        "FSYNCHOLD_MARKER": str(tmp_path / "fsync-held"),
        "FSYNCHOLD_NEEDLE": token,
        "FSYNCHOLD_AFTER": "1" if after else "0",
    }


def events(tmp_path: Path, name: str) -> list[dict[str, object]]:
    found = []
    for line in (tmp_path / "daemon.log").read_text().splitlines():
        with contextlib.suppress(ValueError):
            if (record := json.loads(line)).get("event") == name:
                found.append(record)
    return found


def emails_with(db_path: Path, text: str) -> int:
    with closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM emails WHERE text = ?", (text,)).fetchone()
    return int(count)


async def reap(proc: subprocess.Popen[bytes], trigger: Path, smtp_port: int) -> None:
    """Whatever is left of the daemon's process group goes, and its port with it."""
    await asyncio.to_thread(trigger.unlink, missing_ok=True)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await asyncio.to_thread(proc.wait)
    await until_refused(smtp_port)  # a worker's copy of the listener would take the restart's clients


async def sent_once(config: Path, smsc_port: int, smtp_port: int, text: str, retry: bytes | None) -> None:
    """After a restart, (the retry answered 250 and) the mail's one SMS, then nothing but the marker's."""
    rcpt = f"601123456@{DOMAIN}"
    async with HappySMSC(port=smsc_port) as smsc:
        proc = await start_daemon(config, smtp_port)
        try:
            if retry is not None:
                res = await asyncio.to_thread(send_blocking, smtp_port, retry, [rcpt])
                assert res.error is None and res.refused == {}
            await smsc.wait_for(1, timeout=20)
            await send_marker(smsc, smtp_port)
            assert [s.text for s in smsc.received] == [text, "Marker"]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 30) == 0


@INTAKE
async def test_sigterm_while_a_mail_is_committed_answers_it_250_and_sends_one_sms(
    tmp_path: Path, intake_processes: int
) -> None:
    # F10 with traffic in flight: the daemon is told to stop while the fsync of a mail's commit does
    # not return. The mail has no Message-ID, so a retry of it would be a new mail: the client must
    # hear 250 once the commit is on the disk (the stop waits for it), not the 421 a worker said
    # after 10 s to a mail its daemon committed anyway, whose retry then made a second SMS.
    shim = build_fsynchold(tmp_path)
    smsc_port, smtp_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port, intake_processes=intake_processes)
    token = f"stop-{uuid.uuid4().hex}"
    text = f"Committed at the stop {token}"
    raw = mail(f"601123456@{DOMAIN}", text).as_bytes(policy=email.policy.SMTP)
    assert b"Message-ID" not in raw
    trigger, marker = tmp_path / "hold-fsync", tmp_path / "fsync-held"
    proc = await start_daemon(config, smtp_port, env=held_env(shim, tmp_path, token), new_session=True)
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await open_data(smtp_port, f"601123456@{DOMAIN}")
        trigger.touch()
        writer.write(raw + b".\r\n")
        await writer.drain()
        held = (await asyncio.to_thread(wait_for_text, marker, 20)).split()
        assert held[1].endswith("/smsgw.db-wal"), f"the fsync held is not the WAL's: {held}"
        proc.send_signal(signal.SIGTERM)
        reply = asyncio.ensure_future(smtp_reply(reader))
        done, _ = await asyncio.wait({reply}, timeout=HOLD_SECONDS)
        assert not done, f"answered {reply.result()!r} while its commit was not on the disk"
        trigger.unlink()
        assert (await asyncio.wait_for(reply, 20)).startswith(b"250")
        assert await asyncio.to_thread(proc.wait, 60) == 0
    finally:
        if writer is not None:
            writer.close()
        await reap(proc, trigger, smtp_port)
    assert events(tmp_path, "intake.answer_dropped") == []
    assert emails_with(tmp_path / "state" / "smsgw.db", text) == 1
    await sent_once(config, smsc_port, smtp_port, text, retry=None)  # heard 250: no retry


@INTAKE
async def test_sigkill_after_the_fsync_before_the_250_the_retry_sends_one_sms(
    tmp_path: Path, intake_processes: int
) -> None:
    # F2: the mail's commit is on the disk (the fsync has returned) and the daemon is killed with -9,
    # its worker too, before anyone was told: the client hears nothing and sends the mail again
    # (same Message-ID). After the restart the retry is answered 250 and recognised: one SMS.
    shim = build_fsynchold(tmp_path)
    smsc_port, smtp_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port, intake_processes=intake_processes)
    token = f"synced-{uuid.uuid4().hex}"
    text = f"On the disk, unanswered {token}"
    raw = mail(f"601123456@{DOMAIN}", text, Message_ID=f"<{token}@client.example>").as_bytes(
        policy=email.policy.SMTP
    )
    trigger, marker = tmp_path / "hold-fsync", tmp_path / "fsync-held"
    env = held_env(shim, tmp_path, token, after=True)
    proc = await start_daemon(config, smtp_port, env=env, new_session=True)  # no SMSC: nothing is sent
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await open_data(smtp_port, f"601123456@{DOMAIN}")
        trigger.touch()
        writer.write(raw + b".\r\n")
        await writer.drain()
        held = (await asyncio.to_thread(wait_for_text, marker, 20)).split()
        assert held[0].endswith("-done") and held[1].endswith("/smsgw.db-wal"), held
        with contextlib.suppress(TimeoutError):
            early = await asyncio.wait_for(smtp_reply(reader), timeout=1.0)
            pytest.fail(f"answered {early!r} before the fsync had returned to the daemon")
        os.killpg(proc.pid, signal.SIGKILL)  # the daemon and its worker, as a power cut would
        await asyncio.to_thread(proc.wait)
        assert await asyncio.wait_for(smtp_reply(reader), timeout=20) == b""
    finally:
        if writer is not None:
            writer.close()
        await reap(proc, trigger, smtp_port)
    assert emails_with(tmp_path / "state" / "smsgw.db", text) == 1
    await sent_once(config, smsc_port, smtp_port, text, retry=raw)


async def test_a_commit_held_past_the_daemons_patience_still_tells_the_idle_sessions_421(
    tmp_path: Path,
) -> None:
    # The worker waits for a mail whose commit is held, but only until just before the daemon kills
    # it (WORKER_STOP_SECONDS): then the mail's connection is closed without a reply, as the kill would, and
    # the idle sessions (a mail server's kept connections) hear 421, not the reset of a killed process.
    shim = build_fsynchold(tmp_path)
    smsc_port, smtp_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port, intake_processes=1)
    token = f"held-{uuid.uuid4().hex}"
    raw = mail(f"601123456@{DOMAIN}", f"Held past the stop {token}").as_bytes(policy=email.policy.SMTP)
    trigger, marker = tmp_path / "hold-fsync", tmp_path / "fsync-held"
    proc = await start_daemon(config, smtp_port, env=held_env(shim, tmp_path, token), new_session=True)
    writers: list[asyncio.StreamWriter] = []
    try:
        idle = []
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
            writers.append(writer)
            assert (await smtp_reply(reader)).startswith(b"220")
            writer.write(b"EHLO client.example\r\n")
            assert (await smtp_reply(reader)).startswith(b"250")
            idle.append(reader)
        held_reader, writer = await open_data(smtp_port, f"601123456@{DOMAIN}")
        writers.append(writer)
        trigger.touch()
        writer.write(raw + b".\r\n")
        await writer.drain()
        held = (await asyncio.to_thread(wait_for_text, marker, 20)).split()
        assert held[1].endswith("/smsgw.db-wal"), f"the fsync held is not the WAL's: {held}"
        proc.send_signal(signal.SIGTERM)
        replies = [asyncio.ensure_future(smtp_reply(reader)) for reader in [*idle, held_reader]]
        done, _ = await asyncio.wait(replies, timeout=HOLD_SECONDS)
        assert not done, f"answered {[r.result() for r in done]!r} while the commit was held"
        # Past the daemon's 20 s, the fsync still held: every connection has its ending by then.
        answered = await asyncio.wait_for(asyncio.gather(*replies), 25.0 - HOLD_SECONDS)
        assert [reply[:3] for reply in answered] == [b"421", b"421", b"421", b""], answered
        trigger.unlink()
        assert await asyncio.to_thread(proc.wait, 60) == 0
    finally:
        for writer in writers:
            writer.close()
        await reap(proc, trigger, smtp_port)
    assert events(tmp_path, "intake.worker_killed") == []
    assert [e.get("in_progress") for e in events(tmp_path, "intake.worker_drain_timeout")] == [1]
