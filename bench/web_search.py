"""Panel message search benchmark: 1,000,000 messages, then the searches an admin runs, timed.

Generates `--messages` messages (one email each) over 20 accounts and 200 senders, one sender
rare (a message in 10,000), created over 180 days, straight into a fresh store with `executemany`,
and 3,000 opt-outs (half of them numbers one account wrote to); then times the panel's own reads:
the search (`search_messages`, the page a GET /messages runs; the first page and a deep page
(keyset `before`), by user (common and rare), by date range (recent and old), by state and by
number), the dashboard's held and expired messages, and the account page's opt-outs and its
check before an opt-out is added, for the operator and for one company admin. Each runs a few
times and the best is printed.

The database is timed as installations have it: without ANALYZE (the store never runs it; it
would change the plans of the hot queries), so SQLite plans without statistics. A database left by
an earlier version of this script, which ran ANALYZE, has its statistics dropped first.

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
from gateway.web.repo import PAGE, PanelRepo, needing_attention, optouts_page  # noqa: E402

START = 1_767_222_000.0  # 2026-01-01 local
DAYS = 180
STATES = ["delivered"] * 90 + ["failed"] * 5 + ["expired"] * 2 + ["queued"] * 2 + ["hold"]
BATCH = 50_000
RARE = "rare@acct7.example"
ADMIN_ACCOUNT = 8  # acct7's id: the company admin's account in the cases below
OPTOUTS = 3000


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
    # Half of acct7's opt-outs, half numbers it never wrote to (other accounts' customers).
    written = [
        r[0]
        for r in conn.execute(
            "SELECT recipient FROM messages WHERE account_id = ? LIMIT ?", (ADMIN_ACCOUNT, OPTOUTS // 2)
        )
    ]
    others = [f"+4869{n:07d}" for n in range(OPTOUTS - len(written))]
    with store.db.transaction():
        conn.executemany(
            "INSERT INTO optouts (number, word, source, created_at) VALUES (?, 'STOP', 'mo', ?)"
            " ON CONFLICT DO NOTHING",
            [(number, START + i) for i, number in enumerate(written + others)],
        )
    store.close()


def without_statistics(path: Path) -> None:
    """As installations are: an earlier version of this script ran ANALYZE on its database."""
    store = Store.open(path)
    if store.db.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        store.db.conn.execute("DROP TABLE sqlite_stat1")
        print("dropped the statistics an earlier run had made (ANALYZE)")
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
    without_statistics(path)
    store = Store.open(path)
    repo = PanelRepo(store.db, store.clock)
    conn = store.db.conn
    deep = repo.search_messages(None, limit=1, before_id=args.messages // 2)[0]["id"]
    mine = conn.execute(
        "SELECT recipient FROM messages WHERE account_id = ? LIMIT 1", (ADMIN_ACCOUNT,)
    ).fetchone()[0]
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
        ("admin acct7, common user", 8, {"user": "user3@acct7.example"}),
        ("admin acct7, a number it wrote to", 8, {"number": mine}),
        ("admin acct7, a number it never wrote to", 8, {"number": "+48699999999"}),
        ("admin acct7, state hold", 8, {"state": "hold"}),
        ("admin acct7, state delivered", 8, {"state": "delivered"}),
        ("admin acct7, last day", 8, {"since": START + (DAYS - 1) * day}),
    ]
    print(f"{'search':<44}{'rows':>6}{'best of 3':>12}")
    for name, scope, kw in cases:
        seconds, rows = best(lambda scope=scope, kw=kw: repo.search_messages(scope, limit=PAGE + 1, **kw))
        print(f"{name:<44}{len(rows):>6}{seconds * 1000:>10.1f} ms")
    pages: list[tuple[str, Any]] = [
        ("operator, dashboard held+expired", lambda: needing_attention(conn, None)),
        ("admin acct7, dashboard held+expired", lambda: needing_attention(conn, ADMIN_ACCOUNT)),
        ("operator, opt-outs page 1", lambda: optouts_page(conn, None)),
        ("admin acct7, opt-outs page 1", lambda: optouts_page(conn, ADMIN_ACCOUNT)),
        ("admin acct7, opt-out add check (not its)", lambda: [repo.wrote_to(ADMIN_ACCOUNT, "+48699999999")]),
    ]
    for name, read in pages:
        seconds, rows = best(read)
        print(f"{name:<44}{len(rows):>6}{seconds * 1000:>10.1f} ms")
    store.close()


if __name__ == "__main__":
    main()
