"""Panel message search benchmark: 1,000,000 messages, then the searches an admin runs, timed.

Generates `--messages` messages (one email each) over 20 accounts and 200 senders, one sender
rare (a message in 10,000), created over 180 days, straight into a fresh store with `executemany`;
then times the panel's own search (`PanelRepo.search_messages`, the page a GET /messages runs):
the first page and a deep page (keyset `before`), by user (common and rare), by date range (recent
and old), by state and by number, for the operator and for one company admin. Each search runs a
few times and the best is printed, with SQLite's query plan for the slowest.

Usage: python bench/web_search.py [--messages 1000000] [--dir DIR]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.store.db import Store  # noqa: E402
from gateway.web.repo import PAGE, PanelRepo  # noqa: E402

START = 1_767_222_000.0  # 2026-01-01 local
DAYS = 180
STATES = ["delivered"] * 90 + ["failed"] * 5 + ["expired"] * 2 + ["queued"] * 2 + ["hold"]
BATCH = 50_000
RARE = "rare@acct7.example"


def build(path: Path, n: int) -> None:
    store = Store.open(path)
    for a in range(20):
        store.accounts.add_account(f"acct{a}")
    conn = store.db.conn
    rnd = random.Random(7)
    step = DAYS * 86400 / n
    done = 0
    while done < n:
        emails, messages = [], []
        for i in range(done, min(n, done + BATCH)):
            account = i % 20 + 1
            sender = RARE if i % 10_000 == 5 else f"user{rnd.randrange(200)}@acct{account - 1}.example"
            ts = START + i * step
            emails.append((i + 1, account, sender, "text", ts))
            number = f"+4860{rnd.randrange(10_000_000):07d}"
            messages.append(
                (
                    i + 1,
                    i + 1,
                    account,
                    number,
                    "+48100200300",
                    "text",
                    0,
                    1,
                    rnd.choice(STATES),
                    ts,
                    ts + 86400,
                )
            )
        with store.db.transaction():
            conn.executemany(
                "INSERT INTO emails (id, account_id, mail_from, text, received_at) VALUES (?,?,?,?,?)", emails
            )
            conn.executemany(
                "INSERT INTO messages (id, email_id, account_id, recipient, source, text, coding,"
                " parts_total, state, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                messages,
            )
        done += len(messages)
    conn.execute("ANALYZE")
    store.close()


def best(fn: Any, runs: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="smsgw-websearch-"))
    path = base / "bench.db"
    if not path.exists():
        t0 = time.perf_counter()
        build(path, args.messages)
        print(f"generated {args.messages:,} messages in {time.perf_counter() - t0:.1f} s ({path})")
    store = Store.open(path)
    repo = PanelRepo(store.db, store.clock)
    deep = repo.search_messages(None, limit=1, before_id=args.messages // 2)[0]["id"]
    day = 86400
    cases: list[tuple[str, int | None, dict[str, Any]]] = [
        ("operator, first page", None, {}),
        ("operator, deep page (keyset)", None, {"before_id": deep}),
        ("operator, common user", None, {"user": "USER3@acct3.example"}),
        ("operator, rare user", None, {"user": RARE}),
        ("operator, last day", None, {"since": START + (DAYS - 1) * day}),
        ("operator, a day 5 months back", None, {"since": START + 30 * day, "until": START + 31 * day}),
        (
            "operator, rare user in a week",
            None,
            {"user": RARE, "since": START + 60 * day, "until": START + 67 * day},
        ),
        ("operator, state hold", None, {"state": "hold"}),
        ("admin acct7, first page", 8, {}),
        ("admin acct7, rare user", 8, {"user": RARE}),
        ("admin acct7, a day 5 months back", 8, {"since": START + 30 * day, "until": START + 31 * day}),
        ("admin acct7, other account's user", 8, {"user": "user1@acct1.example"}),
    ]
    print(f"{'search':<40}{'rows':>6}{'best of 3':>12}")
    for name, scope, kw in cases:
        seconds, rows = best(lambda scope=scope, kw=kw: repo.search_messages(scope, limit=PAGE + 1, **kw))
        print(f"{name:<40}{len(rows):>6}{seconds * 1000:>10.1f} ms")
    store.close()


if __name__ == "__main__":
    main()
