"""The cost of migration 73 (the dedup index of messages made (dedup_key, created_at), not unique)
and of one look for an earlier copy (`AcceptingRepo.reached_before`) before and after it.

A table shaped as `messages` gets `--rows` rows with random keys, as mails give them; the old
index is built, then the migration's statements are timed, and each lookup (a key no copy has, as
for almost every mail, and one that has) is counted in SQLite VM instructions (its progress
handler, one call per instruction).

Usage: python bench/dedup_window.py [--rows 1000000]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.store.accepting import _REACHED, RETRY_WINDOW_SECONDS  # noqa: E402
from gateway.store.migrations_since_61 import SINCE_61  # noqa: E402

OLD_INDEX = "CREATE UNIQUE INDEX messages_dedup ON messages(dedup_key, recipient) WHERE dedup_key IS NOT NULL"
OLD_LOOKUP = "SELECT recipient FROM messages WHERE dedup_key = ?"


def steps(conn: sqlite3.Connection, sql: str, args: tuple[object, ...]) -> int:
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    conn.set_progress_handler(tick, 1)
    conn.execute(sql, args).fetchall()
    conn.set_progress_handler(None, 1)
    return count[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "b.db", isolation_level=None)
        conn.execute(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, recipient TEXT NOT NULL, text TEXT NOT NULL,"
            " created_at REAL NOT NULL, dedup_key TEXT)"
        )
        now = time.time()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO messages (recipient, text, created_at, dedup_key) VALUES (?, ?, ?, ?)",
            (
                (f"+4860{i:07d}", "Disk /var is 98% full" * 3, now - i * 7.8, os.urandom(32).hex())
                for i in range(rows)
            ),
        )
        conn.execute(OLD_INDEX)
        conn.execute("COMMIT")
        hit = conn.execute("SELECT dedup_key FROM messages WHERE id = 10").fetchone()[0]
        miss = os.urandom(32).hex()
        old = [steps(conn, OLD_LOOKUP, (k,)) for k in (miss, hit)]
        started = time.perf_counter()
        conn.executescript("BEGIN;" + SINCE_61[-1] + "COMMIT;")
        took = time.perf_counter() - started
        since = now - RETRY_WINDOW_SECONDS
        new = [steps(conn, _REACHED, (k, since)) for k in (miss, hit)]
        print(f"rows {rows}: migration 73 took {took:.2f} s")
        print(f"lookup, VM instructions (no copy / a copy): before {old[0]} / {old[1]},", end=" ")
        print(f"after {new[0]} / {new[1]}")


if __name__ == "__main__":
    main()
