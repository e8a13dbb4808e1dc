"""Intake workers and signals, stops and starts: a stop signalled to every process at once, a worker
signalled before the daemon or alone, SIGHUP, a daemon that stood still, a start cancelled while it
waits, a slow start against a serving worker falling silent, a worker on upgraded code. Real daemon
processes, as in test_intake_workers.py; split from it by subject (it was over 400 lines)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from gateway import intake_workers
from gateway.config import parse_config
from gateway.daemon import Daemon
from tests.conftest import (
    DOMAIN,
    free_port,
    mail,
    running_gateway,
    send_blocking,
)
from tests.fakes.smsc import HappySMSC
from tests.test_intake_workers import (
    alive,
    log_events,
    stop,
    until,
    worker_config,
    worker_config_text,
    worker_pids,
)
from tests.test_process import ROOT, start_daemon


async def test_a_stop_signalled_to_every_process_at_once_logs_no_worker_crash(tmp_path: Path) -> None:
    # systemd's default KillMode sends SIGTERM to the daemon and its workers together. A worker
    # that goes while the daemon is stopping is no crash to log or restart (it was, when the web
    # panel's stop came between the intake's and the supervisor's stopping flags).
    smtp_port = free_port()
    web = f'[web]\nenabled = true\nlisten = "127.0.0.1:{free_port()}"\n'
    path = tmp_path / "config.toml"
    path.write_text(worker_config_text(tmp_path, free_port(), smtp_port, 1, extra=web))
    proc = await start_daemon(path, smtp_port)
    await until(lambda: len(log_events(tmp_path, "intake.worker_serving")) == 1, "the worker serving")
    for pid in (proc.pid, *worker_pids(tmp_path)):
        os.kill(pid, signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0
    assert log_events(tmp_path, "worker.crashed") == []


async def test_a_worker_signalled_before_the_daemon_is_no_crash(tmp_path: Path) -> None:
    # The same SIGTERM from systemd, the worker's end seen first (its drain done before the daemon
    # handled its own signal): the worker said it was signalled, so its end waits for the daemon's
    # stop instead of being logged as a crash and restarted.
    smtp_port = free_port()
    path = tmp_path / "config.toml"
    path.write_text(worker_config_text(tmp_path, free_port(), smtp_port, 1))
    proc = await start_daemon(path, smtp_port)
    await until(lambda: len(log_events(tmp_path, "intake.worker_serving")) == 1, "the worker serving")
    (worker,) = worker_pids(tmp_path)
    os.kill(worker, signal.SIGTERM)
    await until(lambda: not alive(worker), "the worker gone")
    await asyncio.sleep(0.3)  # its end seen by the daemon, the daemon's own signal still to come
    await stop(proc)
    assert log_events(tmp_path, "worker.crashed") == []
    assert len(worker_pids(tmp_path)) == 1  # not restarted


async def test_a_worker_signalled_alone_is_restarted(tmp_path: Path) -> None:
    # An administrator's `kill <worker>`: no daemon stop follows, so the relay port gets its worker back.
    smtp_port = free_port()
    path = tmp_path / "config.toml"
    path.write_text(worker_config_text(tmp_path, free_port(), smtp_port, 1))
    proc = await start_daemon(path, smtp_port)
    try:
        await until(lambda: len(log_events(tmp_path, "intake.worker_serving")) == 1, "the worker serving")
        (worker,) = worker_pids(tmp_path)
        os.kill(worker, signal.SIGTERM)
        await until(lambda: len(log_events(tmp_path, "intake.worker_serving")) == 2, "the worker back", 400)
        (crash,) = log_events(tmp_path, "worker.crashed")
        assert "stopped by a signal" in str(crash["error"])
        rcpt = f"601123456@{DOMAIN}"
        res = await asyncio.to_thread(send_blocking, smtp_port, mail(rcpt, "Back"), [rcpt])
        assert res.error is None
    finally:
        await stop(proc)


async def test_a_hangup_signal_neither_stops_the_daemon_nor_its_workers(tmp_path: Path) -> None:
    # `kill -HUP` (a reload habit, logrotate) ended the daemon at once, without a 421 or a log
    # line, and systemd took that for a clean end and left the gateway down.
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        proc = await start_daemon(worker_config(tmp_path, smsc.port, smtp_port, 1), smtp_port)
        try:
            await until(lambda: len(log_events(tmp_path, "intake.worker_serving")) == 1, "the worker serving")
            for pid in (proc.pid, *worker_pids(tmp_path)):  # `systemctl kill -s HUP` signals them all
                os.kill(pid, signal.SIGHUP)
            await until(lambda: log_events(tmp_path, "daemon.sighup_ignored"), "the hangup logged")
            res = await asyncio.to_thread(
                send_blocking, smtp_port, mail(f"601123456@{DOMAIN}", "After HUP"), [f"601123456@{DOMAIN}"]
            )
            assert res.error is None
            await smsc.wait_for(1, timeout=20)
            assert proc.poll() is None and log_events(tmp_path, "worker.crashed") == []
            assert len(worker_pids(tmp_path)) == 1
        finally:
            await stop(proc)


def test_a_daemon_that_stood_still_does_not_kill_its_healthy_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The daemon's loop stood still longer than the heartbeat timeout (SIGSTOP, a paused VM): the
    # worker's heartbeats were waiting unread in the socket, yet under uvloop (the daemon's loop,
    # which runs due timers before it reads) it was killed as silent, and every SMTP session in
    # progress with it. (The timeout is 30 s; 3 s here.)
    import uvloop

    monkeypatch.setattr(intake_workers, "HEARTBEAT_TIMEOUT_SECONDS", 3.0)
    cfg = parse_config(worker_config_text(tmp_path, free_port(), free_port(), 1), base_dir=tmp_path)

    async def stand_still() -> tuple[int, int | None]:
        async with running_gateway(cfg) as gw:
            slot = gw.daemon.intake.slots[0]
            await gw.until(lambda: slot.ready.is_set() and slot.heartbeats > 0, timeout=30)
            pid = slot.proc.pid
            # This process stopped for 4.5 s while its loop waits in epoll (which then returns EINTR
            # with no events, so the due timers run before the heartbeats are read), as SIGSTOP or
            # a paused VM stops the daemon; the worker goes on beating.
            stopper = subprocess.Popen(
                ["sh", "-c", f"sleep 0.5; kill -STOP {os.getpid()}; sleep 4.5; kill -CONT {os.getpid()}"]
            )
            await asyncio.sleep(7.0)
            assert stopper.wait(5) == 0
            return pid, None if slot.proc is None or slot.proc.poll() is not None else slot.proc.pid

    with structlog.testing.capture_logs() as logs:
        pid, running = uvloop.run(stand_still())
    assert running == pid
    assert not [e for e in logs if e["event"] in ("intake.worker_silent", "worker.crashed")]
    assert [e for e in logs if e["event"] == "intake.daemon_stalled"]


async def test_a_start_cancelled_while_it_waits_for_its_worker_closes_what_it_opened(tmp_path: Path) -> None:
    # Cancelled while it waited for its intake worker (a start bound given up on a loaded machine),
    # the daemon left both ports listening, its worker running and its database open: the orderly
    # stop covered only a daemon that was ready. Under uvloop the server left open then kept the
    # loop's close waiting for ever (its "unclosed resource" warning, an error under pytest, skips
    # the handle's close), and with it the test run.
    cfg = parse_config(worker_config_text(tmp_path, free_port(), free_port(), 1), base_dir=tmp_path)
    daemon = Daemon(cfg)
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(daemon.run(asyncio.Event()))
        await until(lambda: daemon.intake is not None and daemon.intake.slots[0].proc is not None, "a worker")
        assert daemon.intake is not None
        proc = daemon.intake.slots[0].proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)  # it cannot say it serves: the start goes on waiting for it
        try:
            await until(lambda: hasattr(daemon, "submission_port"), "the submission port bound")
            ports = (daemon.smtp_port, daemon.submission_port)
            for port in ports:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            assert not daemon.ready.is_set()
            task.cancel()
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        done, _ = await asyncio.wait({task}, timeout=60)
    assert task in done and task.cancelled()
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert proc.poll() is not None
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        daemon.store.db.conn.execute("SELECT 1")
    assert [e["event"] for e in logs if e["event"] in ("daemon.stopping", "daemon.stopped")] == [
        "daemon.stopping",
        "daemon.stopped",
    ]


async def test_a_slow_start_is_no_silence_but_a_serving_worker_that_falls_silent_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker's start (a fresh interpreter's imports) on a loaded machine outlasted the heartbeat's
    # bound: it was killed as silent before it could serve, and again after each restart, while the
    # daemon's start waited for it. Held stopped here for longer than the bound before it serves.
    monkeypatch.setattr(intake_workers, "HEARTBEAT_TIMEOUT_SECONDS", 2.0)
    cfg = parse_config(worker_config_text(tmp_path, free_port(), free_port(), 1), base_dir=tmp_path)
    daemon = Daemon(cfg)
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(daemon.run(stop))
        try:
            await until(
                lambda: daemon.intake is not None and daemon.intake.slots[0].proc is not None, "a worker"
            )
            assert daemon.intake is not None
            slot = daemon.intake.slots[0]
            first = slot.proc
            assert first is not None
            os.kill(first.pid, signal.SIGSTOP)
            await asyncio.sleep(4.0)  # twice the heartbeat's bound
            assert first.poll() is None, "killed while it started"
            os.kill(first.pid, signal.SIGCONT)
            await until(lambda: daemon.ready.is_set() and slot.heartbeats > 0, "the worker serving")
            assert slot.proc is first and slot.starts == 1
            assert not [e for e in logs if e["event"] in ("intake.worker_silent", "worker.crashed")]
            # Serving, the heartbeat's bound is the one: stopped now, it is killed and started again.
            os.kill(first.pid, signal.SIGSTOP)
            await until(lambda: slot.starts == 2, "the silent worker replaced")
            assert first.wait(10) == -signal.SIGKILL
            (silent,) = [e for e in logs if e["event"] == "intake.worker_silent"]
            assert silent["seconds"] == 2.0 and silent["serving"] is True
        finally:
            stop.set()
            await asyncio.wait({task}, timeout=60)
    task.result()


async def stop_on_upgraded_code(tmp_path: Path) -> int:
    """The daemon run from a copy of its code with one intake worker, that code changed under it and
    the worker killed so that its next start finds the change: the daemon's exit status. Its log is
    tmp_path / "daemon.log"."""
    code = tmp_path / "code"
    for package in ("gateway", "smsc", "acl", "billing_reports"):
        shutil.copytree(ROOT / package, code / package, ignore=shutil.ignore_patterns("__pycache__"))
    async with HappySMSC() as smsc:
        path = worker_config(tmp_path, smsc.port, free_port(), 1)
        with (tmp_path / "daemon.log").open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "--config", str(path), "run", "--json-logs"],
                cwd=code, stdout=out, stderr=out, env={**os.environ, "PYTHONPATH": str(code)},
            )  # fmt: skip
        try:
            await until(lambda: len(log_events(tmp_path, "intake.worker_serving")) == 1, "the worker serving")
            upgraded = code / "gateway" / "intake_channel.py"
            upgraded.write_text(upgraded.read_text() + "\n# upgraded\n")
            (worker,) = worker_pids(tmp_path)
            os.kill(worker, signal.SIGKILL)  # its next start finds the code changed
            return await asyncio.to_thread(proc.wait, 60)
        finally:
            if proc.poll() is None:
                proc.kill()


async def test_a_worker_started_on_upgraded_code_stops_the_daemon_to_start_again(tmp_path: Path) -> None:
    # `pip install -U` replaces the files under a running daemon; a worker started after that (a
    # crash, a kill) ran the new code against the old daemon's channel: every start crashed on the
    # pickled records, 451 to all relay mail, and the daemon, alive and beating, was never restarted.
    # Exit 1: systemd's Restart=on-failure starts the daemon again, on the new code.
    assert await stop_on_upgraded_code(tmp_path) == 1
    changed = log_events(tmp_path, "intake.code_changed")
    assert [e.get("worker_code") is not None for e in changed] == [True, False]  # the worker's, the daemon's
    assert len(worker_pids(tmp_path)) == 2  # not restarted again and again
