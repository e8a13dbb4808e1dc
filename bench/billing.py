"""Monthly billing benchmark: a month of SMS over many accounts, billed, timed and its memory measured.

Generates `--sms` SMS of one month (`--premium` percent of them premium MOs with money, 2 by
default, each from a phone of its own; the rest MT in the four final states and pending) spread
over `--accounts` accounts, straight into a fresh store with `executemany` in one transaction, then
runs what the monthly job runs for all accounts (every file and the summary, written atomically)
and prints the time and the process's peak memory before and after. The rows are streamed, so the
peak must not grow with the month: `--sms` at a tenth of the size shows the same peak. Nor with the
phones: `--premium 90 --accounts 1` is one account's TV vote, 900,000 phones voting once each, and
must show the peak of the default month.

Usage: python bench/billing.py [--sms 1000000] [--accounts 50] [--premium 2] [--dir DIR]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from billing_reports.monthly import Month  # noqa: E402
from billing_reports.writer import write_month  # noqa: E402
from gateway.store.db import Store  # noqa: E402

TZ = ZoneInfo("Europe/Warsaw")
MONTH = Month(2026, 3)
STATES = ["delivered"] * 90 + ["failed"] * 5 + ["expired"] * 2 + ["submitted"] * 2 + ["cancelled"]
BATCH = 50_000


def build(path: Path, sms: int, accounts: int, premium_pct: int = 2) -> None:
    Store.open(path).close()  # schema, migrations, indexes
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    start, end = MONTH.bounds(TZ)
    conn.executemany(
        "INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)",
        [(a, f"account{a:02d}", start - 86400) for a in range(1, accounts + 1)],
    )
    rnd = random.Random(12)
    step = (end - start) / sms
    emails, messages, premium = [], [], []
    for i in range(1, sms + 1):
        ts = start + (i - 1) * step
        account = rnd.randint(1, accounts)
        if i * premium_pct // 100 != (i - 1) * premium_pct // 100:  # spread evenly: every 50th at 2 %
            premium.append((i, i, "7355", f"+4860{i:07d}", account, "KP1", 1, 300, 150, "", "mailed", ts))
        else:
            emails.append((i, account, f"user{rnd.randint(1, 5)}@account{account:02d}.example", "x", ts))
            state = rnd.choice(STATES)
            reason = "rejected by the SMSC" if state == "failed" else None
            messages.append(
                (i, i, account, f"+4860{i:07d}", "+48100200300", "x", 0, rnd.randint(1, 3), state, reason, ts,
                 ts + 86400)
            )  # fmt: skip
        if len(emails) + len(premium) >= BATCH or i == sms:  # a vote's month too: the lists stay small
            _flush(conn, emails, messages, premium)
    conn.execute("COMMIT")
    conn.close()


def _flush(conn: sqlite3.Connection, emails: list, messages: list, premium: list) -> None:  # type: ignore[type-arg]
    conn.executemany(
        "INSERT INTO emails (id, account_id, mail_from, text, received_at) VALUES (?,?,?,?,?)", emails
    )
    conn.executemany(
        "INSERT INTO messages (id, email_id, account_id, recipient, source, text, coding, parts_total, state,"
        " reason, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        messages,
    )
    conn.executemany(
        "INSERT INTO premium_mo (id, mo_id, number, phone, account_id, password, parts, price, commission,"
        " text, state, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        premium,
    )
    emails.clear()
    messages.clear()
    premium.clear()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bill(base: Path) -> None:
    """The run alone, in a fresh process, so that its peak memory is its own."""
    before = peak_mb()
    t0 = time.perf_counter()
    files = write_month(base / "smsgw.db", base / "state", MONTH, TZ)
    elapsed = time.perf_counter() - t0
    lines = sum(f.sums.sms for f in files.accounts)
    size = sum(f.path.stat().st_size for f in files.accounts) / 1e6
    print(f"billed {MONTH}: {len(files.accounts)} files, {lines:,} lines, {size:.1f} MB in {elapsed:.2f} s")
    print(f"  {lines / elapsed:,.0f} lines/s; peak RSS {before:.1f} MB at start, {peak_mb():.1f} MB after")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sms", type=int, default=1_000_000)
    p.add_argument("--accounts", type=int, default=50)
    p.add_argument(
        "--premium",
        type=int,
        default=2,
        choices=range(101),
        metavar="PERCENT",
        help="premium MOs, each from its own phone, as a percentage of the SMS (default 2)",
    )
    p.add_argument("--dir", type=Path, help="keep the store and files here (default: a temporary directory)")
    p.add_argument("--bill-only", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.bill_only:
        bill(args.bill_only)
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = args.dir or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        (base / "smsgw.db").unlink(missing_ok=True)
        t0 = time.perf_counter()
        build(base / "smsgw.db", args.sms, args.accounts, args.premium)
        voters = args.sms * args.premium // 100
        print(
            f"generated {args.sms:,} SMS over {args.accounts} accounts ({voters:,} premium MOs from as many"
            f" phones) in {time.perf_counter() - t0:.1f} s"
        )
        subprocess.run([sys.executable, __file__, "--bill-only", str(base)], check=True)


if __name__ == "__main__":
    main()
