"""The daemon as a real process killed with -9 (RELIABILITY.md F1, F3, F4): nothing lost, nothing twice.

Killed mid-DATA, nothing of the unfinished mail is kept; with the WAL fsync held, no 250 is sent and
the client's retry gives one SMS; after 250, the SMS goes out once after the restart; with a submit
unanswered, it is sent again once and logged. The daemon, its SMTP listener and the SMSC fakes are
real processes and sockets; the helpers are test_process.py's.
"""

from __future__ import annotations

import asyncio
import email.policy
import signal
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import DOMAIN, free_port, mail, send_blocking
from tests.fakes.smsc import HappySMSC, SilentSMSC
from tests.test_process import (
    build_fsynchold,
    open_data,
    send_marker,
    smtp_reply,
    start_daemon,
    wait_for_text,
    write_config,
)
from tests.test_stop_in_flight import emails_with, held_env, reap, sent_once


async def test_sigkill_after_250_sends_the_sms_exactly_once(tmp_path: Path) -> None:
    # F3: 250 means on disk; after kill -9 and a restart the queued SMS goes out once.
    smsc_port, smtp_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port)
    proc = await start_daemon(config, smtp_port)  # no SMSC yet: nothing can be submitted
    res = await asyncio.to_thread(
        send_blocking, smtp_port, mail(f"601123456@{DOMAIN}", "Survive a crash"), [f"601123456@{DOMAIN}"]
    )
    assert res.error is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    async with HappySMSC(port=smsc_port) as smsc:
        proc = await start_daemon(config, smtp_port)
        try:
            await smsc.wait_for(1, timeout=20)
            await send_marker(smsc, smtp_port)
            assert [s.text for s in smsc.received] == ["Survive a crash", "Marker"]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


async def test_sigkill_mid_data_keeps_nothing_of_the_unfinished_mail(tmp_path: Path) -> None:
    # Killed while the body is still arriving (the end of data never sent): after restart nothing of
    # that mail exists, and the client's retry is sent exactly once. Whether a 250 can come before the
    # fsync is the next test's question.
    smsc_port, smtp_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port)
    proc = await start_daemon(config, smtp_port)
    _reader, writer = await open_data(smtp_port, f"601123456@{DOMAIN}")
    writer.write(b"Subject: half\r\n\r\nThis mail never ends")
    await writer.drain()
    await asyncio.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    writer.close()
    async with HappySMSC(port=smsc_port) as smsc:
        proc = await start_daemon(config, smtp_port)
        try:
            res = await asyncio.to_thread(
                send_blocking, smtp_port, mail(f"601123456@{DOMAIN}", "The retry"), [f"601123456@{DOMAIN}"]
            )
            assert res.error is None
            await smsc.wait_for(1, timeout=20)  # a stored partial mail would have been queued first
            assert [s.text for s in smsc.received] == ["The retry"]
            with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as db:
                assert db.execute("SELECT COUNT(*) FROM emails").fetchone() == (1,)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize("intake_processes", [0, 1], ids=["relay-in-daemon", "relay-in-worker"])
async def test_sigkill_before_the_fsync_no_250_and_the_retry_sends_one_sms(
    tmp_path: Path, intake_processes: int
) -> None:
    # F1: the whole mail has arrived and is committed, but the fsync of the WAL does not return
    # (tests/faults/fsynchold.c holds it from outside the daemon). Until it returns the client must
    # hear nothing; killed with -9 then, the daemon never said 250, nor anything else: the connection
    # drops (a relay worker whose daemon is gone cannot know whether the mail was committed, and a
    # 451 would make a retry without a Message-ID a second SMS). The client retries the same mail.
    # The committed copy survives a process kill (the page cache has it), so after the restart the
    # retry must be answered 250 and recognised as that mail: one SMS, not two.
    shim = build_fsynchold(tmp_path)
    smsc_port, smtp_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port, intake_processes=intake_processes)
    db_path = tmp_path / "state" / "smsgw.db"
    rcpt = f"601123456@{DOMAIN}"
    token = f"held-{uuid.uuid4().hex}"
    text = f"Held fsync {token}"
    raw = mail(rcpt, text, Message_ID=f"<{token}@client.example>").as_bytes(policy=email.policy.SMTP)
    trigger, marker = tmp_path / "hold-fsync", tmp_path / "fsync-held"
    # Only a file holding this mail is held: an fsync of other work (the outbox's polling write, a
    # billing file) goes through, so the fsync held is the one this mail waits for.
    env = held_env(shim, tmp_path, token)
    proc = await start_daemon(config, smtp_port, env=env, new_session=True)  # no SMSC: nothing is sent
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await open_data(smtp_port, rcpt)
        trigger.touch()
        writer.write(raw + b".\r\n")
        await writer.drain()
        held = (await asyncio.to_thread(wait_for_text, marker, 20)).split()
        assert held[1].endswith("/smsgw.db-wal"), f"the fsync held is not the WAL's: {held}"
        try:
            early = await asyncio.wait_for(smtp_reply(reader), timeout=1.0)
        except TimeoutError:
            early = None
        assert early is None, f"the end of data was answered {early!r} while the WAL fsync had not returned"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        late = await asyncio.wait_for(smtp_reply(reader), timeout=20)
        assert late == b"", f"after the kill the client heard {late!r}"
    finally:
        if writer is not None:
            writer.close()
        # The daemon and any worker of it still running go; the worker dies a moment after the
        # daemon, and its copy of the listening socket would take the restarted daemon's first
        # connections (start_daemon's probe, then the retry, reset).
        await reap(proc, trigger, smtp_port)
    with closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as db:
        # Committed before its fsync: the retry below meets a copy of itself already queued.
        assert db.execute("SELECT COUNT(*) FROM emails").fetchone() == (1,)
    await sent_once(config, smsc_port, smtp_port, text, raw)
    assert emails_with(db_path, text) == 1


async def test_sigkill_with_a_submit_unanswered_resends_it_once_and_logs_it(tmp_path: Path) -> None:
    # F4: killed after submit_sm went out and before its answer was recorded: after restart the part
    # is sent again (at-least-once, at most one extra), logged as a possible duplicate, and its DLR
    # still settles the message.
    smtp_port = free_port()
    async with SilentSMSC() as silent:
        config = write_config(tmp_path, silent.port, smtp_port)
        proc = await start_daemon(config, smtp_port)
        res = await asyncio.to_thread(
            send_blocking, smtp_port, mail(f"601123456@{DOMAIN}", "In flight"), [f"601123456@{DOMAIN}"]
        )
        assert res.error is None
        await silent.wait_for(1, timeout=20)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        port = silent.port
    async with HappySMSC(port=port) as smsc:
        proc = await start_daemon(config, smtp_port)
        try:
            await smsc.wait_for(1, timeout=20)
            db = sqlite3.connect(tmp_path / "state" / "smsgw.db")
            for _ in range(200):
                if db.execute("SELECT state FROM messages").fetchall() == [("delivered",)]:
                    break
                await asyncio.sleep(0.05)
            assert db.execute("SELECT state FROM messages").fetchall() == [("delivered",)]
            await send_marker(smsc, smtp_port)
            assert [s.text for s in smsc.received] == ["In flight", "Marker"]
            # The re-send itself, not only the start's count of recovered parts, says so.
            assert '"event":"mt.possible_duplicate"' in (tmp_path / "daemon.log").read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
