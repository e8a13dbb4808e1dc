"""A billing run failing because the disk is full is said meanwhile, kept and run again once the
database takes writes again.

The failure's record is a write on that same full disk: it failed, was logged and dropped, and
`billing.failure_kept` was logged anyway. After the space came back `smsgw status` exited 0, the
month stayed unbilled and nobody was mailed until the next hourly run (the purge: the next day).

A real daemon on a real SQLite file made full as SQLite sees a full disk (packed, and not allowed
to grow: SQLITE_FULL, as tests/test_outbox_full_disk.py does), a real relay sink, `smsgw status` as
its own process.
"""

from __future__ import annotations

import sqlite3
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from billing_reports import failures
from gateway import scheduler
from gateway.housekeeping import read_status
from tests.billing_world import at, cli, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_outbox_full_disk import fill_store, free_store

MONTH = "2026-03"


def fill_state(gw: Any) -> None:
    """No room left in the pages of the jobs' state either (rows of the test's own): the failure's
    record finds none, as on a full disk (the billing run's own write freed a little)."""
    conn = gw.store.db.conn
    n = 0
    for size in (1000, 200, 40, 8, 1, 0):
        try:
            while True:
                n += 1
                conn.execute(
                    "INSERT INTO billing_state (key, value) VALUES (?, ?)", (f"filler/{n}", "x" * size)
                )
        except sqlite3.OperationalError as exc:
            assert exc.sqlite_errorcode == sqlite3.SQLITE_FULL, exc


def events(logs: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [e for e in logs if e["event"] == name]


async def test_a_billing_run_failing_on_a_full_disk_is_said_then_kept_and_run_again_when_room_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler, "UNKEPT_SECONDS", 0.5, raising=False)
    relay = free_port()
    config, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic={"acme": [at(2026, 3, 10, 12)]})
    now = [at(2026, 3, 20, 9)]  # March under way: nothing due at the start
    with structlog.testing.capture_logs() as logs:
        async with smtp_sink(relay), running_gateway(cfg, clock=lambda: now[0]) as gw:
            await gw.until(lambda: bool(events(logs, "billing.up_to_date")))  # the start's run is done
            fill_store(gw.store)
            fill_state(gw)
            now[0] = at(2026, 4, 9, 9)
            await scheduler.bill(gw.store, cfg)  # the hourly run, on the full disk
            assert last_billed(gw.store) == "2026-02"
            assert events(logs, "billing.failure_not_kept"), [e["event"] for e in logs]
            assert not events(logs, "billing.failure_kept")  # it was not
            # Said meanwhile, from memory: the status file the daemon writes in place on a full disk.
            await gw.until(lambda: "billing" in (read_status(cfg.state_dir) or {}).get("failed_jobs", {}))
            shown = cli(config, "status")
            assert shown.returncode == 1, shown.stdout + shown.stderr
            line = next(x for x in shown.stdout.splitlines() if x.startswith("billing"))
            assert f"billing run of {MONTH} has failed since" in line and "not kept" in line, line

            free_store(gw.store)  # room again: the failure is kept, the run goes again at once
            await gw.until(lambda: last_billed(gw.store) == MONTH)
            await gw.until(lambda: failures.failures(gw.store.db.conn) == {})
            mailed = [
                str(message_from_bytes(raw)["Subject"])
                for (raw,) in gw.store.db.conn.execute(
                    "SELECT content FROM outbox WHERE kind = ?", (failures.KIND_MAIL,)
                )
            ]
    # Not mailed: the run again ended it (a notice "tried again every hour" came with the run that
    # ended the failure, and no word after). The start's purge, if it failed too, is kept the same way.
    assert mailed == [], mailed
    kept = [e["kind"] for e in events(logs, "billing.failure_kept")]
    assert kept.count("billing") == 1 and len(set(kept)) == len(kept), kept
