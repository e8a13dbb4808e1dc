"""A worker whose writes fail on a full disk: the daemon crash-looped it with a traceback each time
and a doubled pause up to 30 s, so that once space was freed no SMS left for up to half a minute with
accepted mail queued. Now it is no crash (as a database another process locks): tried again each
second, one line a minute. The failure is SQLite's own SQLITE_FULL from a real file whose page limit
is reached; the supervisor's clock is the virtual one of tests/test_healthz_workers_window.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway import supervisor
from gateway.bitelog import FaultLog
from gateway.store.trouble import disk_full
from tests.test_healthz_workers_window import Schedule


class FullDisk(Schedule):
    """The dispatcher's write fails on a full database `fails` times, then it runs for good."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path, fails: int) -> None:
        super().__init__(monkeypatch)
        # The module's one-a-minute log, as new: another test's full disk within the minute held it.
        monkeypatch.setattr(supervisor, "_lock_faults", FaultLog(supervisor.log, interval=60.0))
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("CREATE TABLE t (x BLOB)")
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        self.conn.execute(f"PRAGMA max_page_count = {pages}")
        self.fails = fails

    async def dispatcher(self) -> None:
        if self.fails:
            self.fails -= 1
            self.tick(1)
            self.conn.execute("INSERT INTO t VALUES (zeroblob(100000))")  # SQLITE_FULL
            raise AssertionError("the write went through")
        self.conn.close()
        self.settled.set()
        await self.ended.wait()


async def test_a_worker_on_a_full_disk_is_tried_each_second_with_no_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with capture_logs() as logs:
        async with FullDisk(monkeypatch, tmp_path / "full.db", fails=8) as schedule:
            pass
    assert schedule.pauses == [1.0] * 8  # 1, 2, 4, 8, 16, 30, 30, 30 before
    assert not schedule.worker.crashed_at and schedule.worker.restarts == 8
    events = [e for e in logs if e["event"].startswith("worker.")]
    assert [e["event"] for e in events] == ["worker.disk_full"] + ["worker.restarted"] * 8, events
    assert "exc_info" not in events[0] and events[0]["retry_in"] == 1.0, events[0]


def test_the_error_is_sqlites_full_disk() -> None:
    # The test's failure is the one the store's writes meet: what `disk_full` recognises.
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("PRAGMA max_page_count = 2")
    with pytest.raises(sqlite3.OperationalError) as raised:
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
    assert disk_full(raised.value)
