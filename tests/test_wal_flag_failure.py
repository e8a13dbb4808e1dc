"""A WAL flag that cannot be written (disk full) is tried again after a while, not at every commit.

The flag (`gateway.store.walcheck`) is written at a process's first commit. When writing it failed,
every later commit tried again and logged the same warning: a busy daemon on a full disk spent each
commit on a write bound to fail and wrote a warning line per commit. Now it waits
`WAL_FLAG_RETRY_SECONDS` between tries, each failed try says so once, and the flag is written by the
first commit after the disk has room again.
"""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from gateway.store import walcheck
from gateway.store.db import Store
from gateway.store.transactions import WAL_FLAG_RETRY_SECONDS


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


def commit(store: Store, n: int) -> None:
    with store.db.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (n INTEGER)")
        conn.execute("INSERT INTO kept VALUES (?)", (n,))


def test_an_unwritable_flag_is_tried_again_after_a_while_not_at_every_commit(tmp_path: Path) -> None:
    db = tmp_path / "smsgw.db"
    Store.open(db).close()
    clock = Clock()
    store = Store.open(db, clock=clock)
    flag = walcheck.flag_path(db)
    flag.mkdir()  # writing the flag fails with an OSError, as on a full disk (and for root too)
    try:
        with capture_logs() as logs:
            for n in range(20):
                commit(store, n)
                clock.now += 1
        failed = [e for e in logs if e["event"] == "store.wal_flag_failed"]
        assert len(failed) == 1, failed
        assert failed[0]["retry_seconds"] == WAL_FLAG_RETRY_SECONDS

        with capture_logs() as logs:
            clock.now += WAL_FLAG_RETRY_SECONDS
            commit(store, 100)
            commit(store, 101)
        assert [e["event"] for e in logs].count("store.wal_flag_failed") == 1  # one more try, failed

        flag.rmdir()  # room again
        commit(store, 102)
        assert not flag.exists()  # not before its time
        clock.now -= 3600  # the clock stepped back an hour: tried at once, not an hour later
        with capture_logs() as logs:
            commit(store, 103)
        assert flag.is_file() and "pid = " in flag.read_text()
        assert not [e for e in logs if e["event"] == "store.wal_flag_failed"]
        assert store.db.conn.execute("SELECT count(*) FROM kept").fetchone() == (24,)  # every commit stood
    finally:
        store.close()
