"""Intake worker processes (`[smtp] intake_processes`): the relay port served by child processes.

Real daemon processes, real SMTP clients, a real SMPP peer: mail through a worker is sent, a
worker killed with -9 is restarted and nothing is lost or doubled, stopping (or killing) the daemon
leaves no worker behind, admin changes and notices cross the process boundary. The worker and the
database, and signals, stops and starts, have modules of their own (test_intake_workers_store.py,
test_intake_workers_signals.py); the helpers they and other modules import stay here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import smtplib
import socket
import subprocess
import threading
from collections import Counter
from contextlib import suppress
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.adminrules import seed_accounts
from gateway.smtp import replies
from gateway.store.db import Store
from tests.codechanged import code_changed_under, logged_errors, started_with
from tests.conftest import (
    DOMAIN,
    STAFF,
    config_text,
    free_port,
    mail,
    send_blocking,
    smtp_sink,
)
from tests.fakes.smsc import HappySMSC
from tests.test_process import CLI, ROOT, smsgw, start_daemon


def worker_config_text(tmp_path: Path, smsc_port: int, smtp_port: int, n: int, **kw: object) -> str:
    text = config_text(tmp_path, smsc_port=smsc_port, smtp_port=smtp_port, **kw)  # type: ignore[arg-type]
    return text.replace("[smtp]\n", f"[smtp]\nintake_processes = {n}\n")


def worker_config(tmp_path: Path, smsc_port: int, smtp_port: int, n: int, **kw: object) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(worker_config_text(tmp_path, smsc_port, smtp_port, n, **kw))
    return path


def log_events(tmp_path: Path, event: str) -> list[dict[str, object]]:
    lines = (tmp_path / "daemon.log").read_text().splitlines()
    found = []
    for line in lines:
        with suppress(ValueError):
            record = json.loads(line)
            if record.get("event") == event:
                found.append(record)
    return found


async def until(predicate, what: str, tries: int = 600) -> None:  # type: ignore[no-untyped-def]
    """Wait for a condition (a hang guard of 30 s, not a timing assertion)."""
    for _ in range(tries):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still waiting for {what}")


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def worker_pids(tmp_path: Path) -> list[int]:
    return [int(r["pid"]) for r in log_events(tmp_path, "intake.worker_started")]  # type: ignore[call-overload]


async def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and the daemon's exit status 0; a daemon its worker stopped because the source files
    changed under it (`code_changed_under`) makes the test skip, naming them: no fault of the stop."""
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(proc.wait, 30)
    if code != 0 and (changed := code_changed_under(proc)):
        pytest.skip(
            f"source files changed while the daemon ran ({', '.join(changed[:3])}): its intake worker"
            " stopped it as after an upgrade (intake.code_changed, exit 1); the test is void"
        )
    assert code == 0, f"exit status {code}; errors logged: {logged_errors(started_with(proc).parent)[-5:]}"


async def test_mail_through_the_workers_reaches_the_smsc(tmp_path: Path) -> None:
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        config = worker_config(tmp_path, smsc.port, smtp_port, 2)
        proc = await start_daemon(config, smtp_port)
        try:
            for i in range(6):
                res = await asyncio.to_thread(
                    send_blocking,
                    smtp_port,
                    mail(f"60112345{i}@{DOMAIN}", f"Via worker {i}"),
                    [f"60112345{i}@{DOMAIN}"],
                )
                assert res.error is None
            await smsc.wait_for(6, timeout=20)
            assert sorted(s.text for s in smsc.received) == [f"Via worker {i}" for i in range(6)]
            accepted = log_events(tmp_path, "smtp.accepted")
            assert len(accepted) == 6 and all(str(r["worker"]).startswith("intake-") for r in accepted)
            await until(
                lambda: log_events(tmp_path, "daemon.ready"), "the start banner (after both workers serve)"
            )
            ready = log_events(tmp_path, "daemon.ready")
            assert "2 intake processes" in str(ready[0]["relay"])
        finally:
            await stop(proc)


def stream(port: int, count: int, acked: list[int], after_ten: threading.Event) -> None:
    """A client that resends every mail not answered 250 (connection lost, 4xx), as an MTA does."""

    def numbered(i: int) -> EmailMessage:
        msg = mail(f"601234{i:03d}@{DOMAIN}", f"Stream {i}")
        msg["Message-ID"] = f"<stream-{i}@acme.example>"  # the same on every attempt, as an MTA keeps it
        return msg

    i = 0
    while i < count:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                while i < count:
                    client.send_message(numbered(i), STAFF, [f"601234{i:03d}@{DOMAIN}"])
                    acked.append(i)
                    if i == 10:
                        after_ten.set()
                    i += 1
        except (OSError, smtplib.SMTPException):
            continue  # the worker died under us: connect again (the daemon restarts it) and resend


async def test_a_worker_killed_mid_stream_is_restarted_and_nothing_is_lost_or_doubled(tmp_path: Path) -> None:
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        config = worker_config(tmp_path, smsc.port, smtp_port, 1)
        proc = await start_daemon(config, smtp_port)
        try:
            await until(lambda: worker_pids(tmp_path), "the worker's pid")
            first = worker_pids(tmp_path)[0]
            acked: list[int] = []
            after_ten = threading.Event()
            client = asyncio.create_task(asyncio.to_thread(stream, smtp_port, 40, acked, after_ten))
            await asyncio.to_thread(after_ten.wait, 30)
            os.kill(first, signal.SIGKILL)
            await asyncio.wait_for(client, 60)
            assert acked == list(range(40))
            await smsc.wait_for(40, timeout=30)
            await until(lambda: len(worker_pids(tmp_path)) == 2, "the restarted worker")
            assert log_events(tmp_path, "worker.crashed")[0]["worker"] == "intake-1"
            res = await asyncio.to_thread(
                send_blocking, smtp_port, mail(f"601999999@{DOMAIN}", "Marker"), [f"601999999@{DOMAIN}"]
            )
            assert res.error is None
            await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received), timeout=20)
            texts = Counter(s.text for s in smsc.received)
            assert texts == Counter([f"Stream {i}" for i in range(40)] + ["Marker"])
        finally:
            await stop(proc)


async def test_stopping_the_daemon_stops_its_workers_and_kill_9_leaves_no_orphans(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = worker_config(tmp_path, free_port(), smtp_port, 2)
    proc = await start_daemon(config, smtp_port)
    await until(lambda: len(worker_pids(tmp_path)) == 2, "two workers")
    pids = worker_pids(tmp_path)
    assert all(alive(pid) for pid in pids)
    await stop(proc)  # SIGTERM, as systemd sends it
    assert not any(alive(pid) for pid in pids)
    assert len(log_events(tmp_path, "intake.worker_stopped")) == 2

    proc = await start_daemon(config, smtp_port)
    await until(lambda: len(worker_pids(tmp_path)) == 4, "two new workers")
    pids = worker_pids(tmp_path)[2:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    await until(lambda: not any(alive(pid) for pid in pids), "the workers of a killed daemon to exit")


async def test_sessions_open_when_the_daemon_stops_hear_421_from_the_worker(tmp_path: Path) -> None:
    # RFC 5321 3.8, as with the relay port in one process: a session idle after EHLO and one between
    # RCPT and DATA hear 421 at SIGTERM; the worker used to exit with a bare TCP close.
    smtp_port = free_port()
    config = worker_config(tmp_path, free_port(), smtp_port, 1)
    proc = await start_daemon(config, smtp_port)
    try:
        sessions = []
        for commands in ([b"EHLO a.example"], [b"EHLO b.example", b"MAIL FROM:<" + STAFF.encode() + b">"]):
            reader, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
            assert (await reader.readline()).startswith(b"220")
            for command in commands:
                writer.write(command + b"\r\n")
                while (line := await reader.readline())[3:4] == b"-":
                    pass
                assert line.startswith(b"250"), line
            sessions.append((reader, writer))
        await stop(proc)
        for reader, writer in sessions:
            assert (await asyncio.wait_for(reader.read(), 5)).startswith(replies.SHUTTING_DOWN.encode())
            writer.close()
    finally:
        await stop(proc)


async def test_a_user_added_by_the_cli_is_honoured_by_the_worker(tmp_path: Path) -> None:
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        config = worker_config(tmp_path, smsc.port, smtp_port, 1)
        proc = await start_daemon(config, smtp_port)
        try:
            newcomer = "bert@acme.example"
            msg = mail(f"601123456@{DOMAIN}", "Hello from the newcomer")
            before = await asyncio.to_thread(send_blocking, smtp_port, msg, [f"601123456@{DOMAIN}"], newcomer)
            assert isinstance(before.error, smtplib.SMTPSenderRefused)
            assert smsgw(config, "user", "add", newcomer, "--account", "acme").returncode == 0
            after = await asyncio.to_thread(send_blocking, smtp_port, msg, [f"601123456@{DOMAIN}"], newcomer)
            assert after.error is None
            await smsc.wait_for(1, timeout=20)
        finally:
            await stop(proc)


async def test_a_notice_queued_by_a_worker_is_sent_by_the_daemons_outbox(tmp_path: Path) -> None:
    smtp_port, relay = free_port(), free_port()
    async with smtp_sink(relay) as sink:
        config = worker_config(tmp_path, free_port(), smtp_port, 1, relay_port=relay)
        proc = await start_daemon(config, smtp_port)
        try:
            res = await asyncio.to_thread(
                send_blocking, smtp_port, mail(f"info@{DOMAIN}", ""), [f"info@{DOMAIN}"]
            )
            assert res.error is None
            await sink.wait(1)
            assert sink.messages[0][1] == [STAFF] and b"limits and use" in sink.messages[0][2]
        finally:
            await stop(proc)


def test_a_busy_relay_port_is_the_same_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = worker_config(tmp_path, free_port(), port, 1)
        res = subprocess.run(
            [*CLI, "--config", str(config), "run"], capture_output=True, text=True, cwd=ROOT, timeout=60
        )
    assert res.returncode == 1
    assert f'cannot listen on [smtp] listen = "127.0.0.1:{port}": the port is already in use' in res.stderr
    assert "Traceback" not in res.stderr


def serving_store(cfg) -> Store:  # type: ignore[no-untyped-def]
    """The daemon side's store, as the daemon serves it: group commit, writes only through write()."""
    store = Store.open(cfg.db_path)
    seed_accounts(store, cfg)
    store.close()
    store = Store.open(cfg.db_path, group_fsync=True)
    store.db.serve()
    return store
