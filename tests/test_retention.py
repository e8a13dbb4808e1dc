"""The retention purge in a running daemon: on the loop thread, in chunks, accepts committed meanwhile."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

import gateway.scheduler
from gateway.store.db import Store
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway

OLD = time.time() - 400 * 86400  # far past the default retention


def seed_old_mail(conn: sqlite3.Connection, emails: int) -> None:
    """Finished mail received long ago: one message, one part and one DLR per email."""
    ids = range(1, emails + 1)
    conn.execute("BEGIN")  # one transaction, not one per row (the store's connection autocommits)
    try:
        conn.executemany(
            "INSERT INTO emails (id, mail_from, text, received_at) VALUES (?, 'old@acme.example', 'old', ?)",
            [(i, OLD) for i in ids],
        )
        conn.executemany(
            "INSERT INTO messages (id, email_id, recipient, source, text, coding, parts_total, state,"
            " created_at, expires_at)"
            " VALUES (?, ?, '+48601000000', '+48100', 'old', 0, 1, 'delivered', ?, ?)",
            [(i, i, OLD, OLD) for i in ids],
        )
        conn.executemany(
            "INSERT INTO parts (id, message_id, seq, state, next_attempt_at, expires_at, destination, source,"
            " data_coding, payload, udh, text) VALUES (?, ?, 1, 'delivered', ?, ?, '+48601000000', '+48100',"
            " 0, x'6f6c64', x'', 'old')",
            [(i, i, OLD, OLD) for i in ids],
        )
        conn.executemany(
            "INSERT INTO dlrs (link, smsc_id, status, part_id, received_at)"
            " VALUES ('main', ?, 'delivered', ?, ?)",
            [(str(i), i, OLD) for i in ids],
        )
        # Billed long since, as a running gateway bills each month: the purge holds a month not billed
        # (billing starts at the first traffic's month), and these tests are about the purge itself.
        conn.execute(
            "INSERT INTO billing_state (key, value) VALUES ('last_billed', ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (time.strftime("%Y-%m", time.gmtime(OLD + 32 * 86400)),),
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def count(db: Path, sql: str) -> int:
    """Read through a connection of its own: sees only what is committed."""
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchone()[0]


OLD_EMAILS = "SELECT COUNT(*) FROM emails WHERE mail_from = 'old@acme.example'"


async def test_accepts_are_committed_while_a_large_purge_runs(tmp_path: Path) -> None:
    # Defect: the purge held one transaction in a worker thread; 250s given meanwhile were not committed.
    cfg = make_config(tmp_path, smsc_port=free_port())
    store = Store.open(cfg.db_path)
    seed_old_mail(store.db.conn, 3_000)  # 120 chunks, each followed by its pause (retention.Pace)
    store.close()
    async with running_gateway(cfg) as gw:
        # The start-up purge has begun (a first chunk is committed) ...
        await gw.until(lambda: count(cfg.db_path, OLD_EMAILS) < 3_000)
        assert (await gw.send(mail(f"601123456@{DOMAIN}", "Accepted during the purge"))).error is None
        # ... and the 250 came back, committed, while the purge is still under way.
        assert count(cfg.db_path, "SELECT COUNT(*) FROM emails WHERE text = 'Accepted during the purge'") == 1
        assert count(cfg.db_path, OLD_EMAILS) > 0
        await gw.until(lambda: count(cfg.db_path, OLD_EMAILS) == 0)
        assert count(cfg.db_path, "SELECT COUNT(*) FROM dlrs") == 0
        assert count(cfg.db_path, "SELECT COUNT(*) FROM messages") == 1


async def test_scheduled_purge_runs_on_the_loop_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Defect: the daily run of a plain-function job went to a worker thread, on the loop's connection.
    schedulers: list[Any] = []
    startup_runs: list[int] = []
    start = gateway.scheduler.start_scheduler

    runs: list[int] = []

    def capture(*args: Any, **kwargs: Any) -> Any:
        scheduler = start(*args, **kwargs)
        count = lambda event: runs.append(1) if event.job_id == "retention-purge" else None  # noqa: E731
        scheduler.add_listener(count, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        first = scheduler.get_job("retention-purge").next_run_time.timestamp()
        startup_runs.append(1 if first < time.time() + 60 else 0)
        schedulers.append(scheduler)
        return scheduler

    monkeypatch.setattr(gateway.scheduler, "start_scheduler", capture)
    loop_thread = threading.get_ident()
    deleting: set[int] = set()
    async with running_gateway(make_config(tmp_path, smsc_port=free_port())) as gw:
        job = schedulers[0].get_job("retention-purge")
        await gw.until(lambda: len(runs) >= startup_runs[0])  # a start-up run, if scheduled, is over
        seed_old_mail(gw.store.db.conn, 500)
        gw.store.db.conn.set_trace_callback(
            lambda sql: deleting.add(threading.get_ident()) if sql.lstrip().startswith("DELETE") else None
        )
        job.modify(next_run_time=datetime.now(UTC))  # as the daily trigger does
        await gw.until(lambda: len(runs) > startup_runs[0])
        assert gw.store.db.conn.execute(OLD_EMAILS).fetchone()[0] == 0
        await asyncio.sleep(0)
        gw.store.db.conn.set_trace_callback(None)
    assert deleting == {loop_thread}


async def test_past_days_usage_counters_and_limit_notices_go_months_stay(tmp_path: Path) -> None:
    # Every accepted mail adds a day's usage row per user and per account, read only on that day;
    # nothing deleted them (the purge, held for billing or not, left `usage` alone): a row per user
    # and day for ever. Monthly totals stay; so do today's counters, which the daily quota reads.
    cfg = make_config(tmp_path, smsc_port=free_port())
    zone = ZoneInfo(cfg.gateway.timezone)
    today = datetime.now(zone).date()
    day = lambda n: (today - timedelta(days=n)).isoformat()  # noqa: E731
    month = today.isoformat()[:7]
    old_month = (today.replace(day=1) - timedelta(days=400)).isoformat()[:7]
    store = Store.open(cfg.db_path)
    conn = store.db.conn
    conn.executemany(
        "INSERT INTO usage (scope, period, parts) VALUES (?, ?, 3)",
        [("account:1", p) for p in (day(400), day(30), day(3), day(0), month, old_month)],
    )
    conn.executemany(
        "INSERT INTO limit_notices (scope, period, created_at) VALUES ('account:1', ?, 0)",
        [(p,) for p in (day(40), day(3), day(0), month, old_month)],
    )
    store.close()
    gone_days = "SELECT COUNT(*) FROM {} WHERE period IN (?, ?, ?, ?)"
    async with running_gateway(cfg) as gw:
        assert (await gw.send(mail(f"601123456@{DOMAIN}", "Counted today"))).error is None
        await gw.until(
            lambda: (
                count_args(cfg.db_path, gone_days.format("usage"), day(400), day(30), day(3), "-")
                + count_args(cfg.db_path, gone_days.format("limit_notices"), day(40), day(3), old_month, "-")
                == 0
            )
        )
    kept = lambda table: {  # noqa: E731
        p
        for (p,) in sqlite3.connect(cfg.db_path).execute(
            f"SELECT period FROM {table} WHERE scope = 'account:1'"
        )
    }
    assert {day(0), month, old_month} <= kept("usage")
    assert {day(0), month} <= kept("limit_notices")
    assert (
        count(cfg.db_path, f"SELECT COUNT(*) FROM usage WHERE period = '{day(0)}' AND scope LIKE 'user:%'")
        == 1
    )


def count_args(db: Path, sql: str, *args: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchone()[0]
