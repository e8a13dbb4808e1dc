"""Intake workers and the database: the daemon side's writes for a worker wake it and send the backlog,
the worker's own store refuses every write, and a worker opens the database without checking it
again. A real worker process against the daemon side, as in test_intake_workers.py; split from it by
subject (it was over 400 lines)."""

from __future__ import annotations

import asyncio
import smtplib
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.intake_child import open_store
from gateway.intake_workers import IntakeWorkers, bind_listeners
from gateway.queuedepth import Backlog
from gateway.smtp.accept import Writes
from gateway.store.db import Store
from tests.conftest import (
    DOMAIN,
    STAFF,
    free_port,
    mail,
    send_blocking,
)
from tests.test_intake_workers import serving_store, until, worker_config_text


async def test_the_daemon_writes_for_the_worker_wakes_itself_and_sends_the_backlog(tmp_path: Path) -> None:
    # In-process daemon side, real worker process: the worker's acceptance is committed by the
    # daemon's store, which wakes the dispatcher (SMS) or the outbox (mail, by its after-commit
    # hook); the high-water check uses the backlog the daemon sends, and the reply counts for
    # /metrics come back with the heartbeat.
    text = worker_config_text(tmp_path, free_port(), 0, 1, queue_high_water=100)
    cfg = parse_config(text, source="test", base_dir=tmp_path)
    store = serving_store(cfg)
    woken = {"dispatcher": asyncio.Event(), "outbox": asyncio.Event()}
    store.outbox.on_queued = woken["outbox"].set  # type: ignore[method-assign]
    begins: list[str] = []
    store.db.conn.set_trace_callback(lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
    listeners = bind_listeners("127.0.0.1", 0)
    port = listeners[0].getsockname()[1]
    backlog = [Backlog(1000, everyone=True)]
    counts: Counter[str] = Counter()
    workers = IntakeWorkers(
        cfg,
        listeners,
        writes=Writes(cfg, store, woken["dispatcher"].set),
        backlog=lambda: backlog[0],
        replies=counts,
    )
    run = asyncio.create_task(workers._run(workers.slots[0]))
    try:
        await workers.wait_ready()
        full = await asyncio.to_thread(
            send_blocking, port, mail(f"601123456@{DOMAIN}"), [f"601123456@{DOMAIN}"]
        )
        assert isinstance(full.error, smtplib.SMTPDataError) and full.error.smtp_code == 451
        assert not woken["dispatcher"].is_set()
        backlog[0] = Backlog()
        await until(lambda: counts["451"] >= 1, "the heartbeat with the counts (answered with the backlog)")
        beats = workers.slots[0].heartbeats
        await until(lambda: workers.slots[0].heartbeats > beats, "the next heartbeat, sent after the backlog")
        res = await asyncio.to_thread(
            send_blocking, port, mail(f"601123456@{DOMAIN}"), [f"601123456@{DOMAIN}"]
        )
        assert res.error is None
        assert woken["dispatcher"].is_set()  # by the daemon's side, before it answered the worker
        assert not woken["outbox"].is_set()
        assert store.db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1
        assert begins  # the daemon's own connection committed it
        res = await asyncio.to_thread(send_blocking, port, mail(f"info@{DOMAIN}", ""), [f"info@{DOMAIN}"])
        assert res.error is None
        assert woken["outbox"].is_set()
        assert store.db.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1
    finally:
        await workers.stop()
        await asyncio.wait_for(run, 30)
        store.close()


async def test_the_workers_store_refuses_every_write(tmp_path: Path) -> None:
    # The worker reads (users, networks, opt-outs, quotas) but must never be a second writer.
    cfg = parse_config(worker_config_text(tmp_path, free_port(), 0, 1), source="test", base_dir=tmp_path)
    serving_store(cfg).close()
    store = open_store(cfg)
    try:
        assert store.accounts.find_user(STAFF) is not None
        with pytest.raises(RuntimeError, match="does not write"):
            await store.write(lambda: None)
        with pytest.raises(RuntimeError, match="does not write"), store.db.transaction():
            pass
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.db.conn.execute("DELETE FROM users")
    finally:
        store.close()


def test_a_worker_opens_the_database_without_checking_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The daemon checked and migrated the file before starting its workers; a worker (re)start must
    # not read a large database once more (quick_check) before it can serve.
    from tests.test_cli_integrity import traced

    cfg = parse_config(worker_config_text(tmp_path, free_port(), 0, 1), source="test", base_dir=tmp_path)
    Store.open(cfg.db_path).close()
    seen = traced(monkeypatch)
    open_store(cfg).close()
    assert seen and not any("quick_check" in s or "user_version" in s for s in seen), seen
    Store.open(cfg.db_path).close()
    assert any("quick_check" in s for s in seen)  # the daemon's own open still checks
