"""The count of parts held for quiet hours (`gateway.store.admin.QUIET_HELD`), as `smsgw status` and
the panel's attention card read it, on a queue of `--parts` parts of which half are due later than
now, half of those under an account with quiet hours.

The hold is told only under an account that has quiet hours (a step back of the clock the daemon did
not see left parts due later under any account, all called held). Printed side by side: the
predicate before that (any part due later), a probe of each part's message and account, and the
list of accounts with quiet hours read once (the one used).

Usage: python bench/quiet_held.py [--parts 100000] [--dir DIR]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.store.admin import QUIET_HELD  # noqa: E402
from gateway.store.db import Store  # noqa: E402

NOW = 1_700_000_000.0
_DUE_LATER = "p.state = 'queued' AND p.attempts = 0 AND p.next_attempt_at > ?"
VARIANTS = {
    "any part due later (before)": _DUE_LATER,
    "a probe through its message": _DUE_LATER
    + " AND EXISTS (SELECT 1 FROM messages qm JOIN accounts qa ON qa.id = qm.account_id"
    " WHERE qm.id = p.message_id AND qa.quiet_start IS NOT NULL)",
    "the accounts read once (used)": QUIET_HELD,
}


def fill(path: Path, parts: int) -> sqlite3.Connection:
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO accounts (id, name, created_at, quiet_start, quiet_end)"
        " VALUES (1, 'quiet', 0, '22:00', '07:00'), (2, 'plain', 0, NULL, NULL)"
    )
    conn.execute("INSERT INTO emails (id, mail_from, text, received_at) VALUES (1, 'a@b', 't', 0)")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " INSERT INTO messages (id, email_id, account_id, recipient, source, text, coding, parts_total,"
        " state, created_at, expires_at) SELECT i, 1, 1 + i % 2, '+48601', 's', 't', 0, 1, 'queued', ?, ?"
        " FROM n",
        (parts, NOW, NOW + 86400),
    )
    conn.execute(
        "INSERT INTO parts (message_id, account_id, seq, state, next_attempt_at, expires_at, destination,"
        " source, data_coding, payload, udh, text) SELECT id, account_id, 1, 'queued',"
        " CASE WHEN id % 4 < 2 THEN ? ELSE ? END, ?, '+48601', 's', 0, x'', x'', 't' FROM messages",
        (NOW + 3600, NOW - 10, NOW + 86400),
    )
    conn.commit()
    conn.execute("ANALYZE")
    return conn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        conn = fill(Path(tmp) / "bench.sqlite", args.parts)
        print(f"{args.parts} parts queued, {args.parts // 2} due later, half of those under quiet hours")
        for name, predicate in VARIANTS.items():
            sql = f"SELECT COUNT(*), MIN(p.next_attempt_at) FROM parts p WHERE {predicate}"
            best = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                count = conn.execute(sql, (NOW,)).fetchone()[0]
                best = min(best, time.perf_counter() - started)
            print(f"  {name:30} {count:7} held   best of 5: {best * 1000:6.1f} ms")
        conn.close()


if __name__ == "__main__":
    main()
