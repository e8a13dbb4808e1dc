"""How long a step back of the wall clock holds the event loop, on a store of `--per-day` SMS a day
(28,575 by default) sent over the days the step reaches and one more, to 20,000 phones, each texted by
two of 50 users, with `--mo-per-day` answers a day.

Printed for each step (`--days`, 1, 7 and 30 by default): the longest the loop went without running
a ticker task (a 1 ms sleep in a loop) while the clock check's look handled the step, how long the
whole move took, and how many writes it made and the most rows one of them moved (`parts` of the
`clock.stepped_back` line aside, counted by the store's write hook), and the longest write: whole (from
its await to its end: the statements, the commit and its wait for the disk), and of it the statements.
Times are wall-clock on this machine.

Usage: python bench/clock_back.py [--per-day 28575] [--days 1 7 30]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.housekeeping import Housekeeping  # noqa: E402
from gateway.store.db import Store  # noqa: E402

DAY = 86400.0
NOW = 1_800_000_000.0
NUMBER = "+48100200300"
PHONES, USERS, WAITING = 20_000, 50, 500


class Clocks:
    def __init__(self) -> None:
        self.wall, self.boot = NOW, 1000.0


def fill(path: Path, days: float, per_day: int, mo_per_day: int) -> int:
    """The SMS, one part each, sent evenly over the last `days`; the last `WAITING` still queued; MOs
    likewise. Returns how many SMS."""
    sms = int(days * per_day)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO accounts (id, name, created_at) VALUES (1, 'acme', 0)")
    gap = days * DAY / sms
    last: dict[tuple[str, str], float] = {}
    emails, messages, parts = [], [], []
    for i in range(1, sms + 1):
        at = NOW - days * DAY + i * gap
        phone, user = f"+4860{i % PHONES:07d}", f"user{(i % PHONES + i // PHONES % 2) % USERS}@acme.example"
        waiting = i > sms - WAITING
        emails.append((i, 1, user, "x", at))
        messages.append(
            (i, i, 1, phone, NUMBER, "x", 0, 1, "queued" if waiting else "delivered", at, at + DAY)
        )
        state, went = ("queued", None) if waiting else ("delivered", at + 1.0)
        parts.append((i, i, 1, state, at, at + DAY, phone, NUMBER, 0, b"x", b"", "x", went))
        last[(phone, user)] = at
    conn.executemany(
        "INSERT INTO emails (id, account_id, mail_from, text, received_at) VALUES (?,?,?,?,?)", emails
    )
    conn.executemany(
        "INSERT INTO messages (id, email_id, account_id, recipient, source, text, coding, parts_total,"
        " state, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        messages,
    )
    conn.executemany(
        "INSERT INTO parts (id, message_id, seq, state, next_attempt_at, expires_at, destination, source,"
        " data_coding, payload, udh, text, submitted_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        parts,
    )
    conn.executemany(
        "INSERT INTO conversations (phone, number, user_email, account_id, domain, text, started_at,"
        " last_mt_at) VALUES (?,?,?,1,'sms.example.com','x',?,?)",
        [(phone, NUMBER, user, at, at) for (phone, user), at in last.items()],
    )
    mos = int(days * mo_per_day)
    conn.executemany(
        "INSERT INTO mo (link, source, destination, text, received_at, acked_at, state)"
        " VALUES ('main',?,?,?,?,?,?)",
        [
            (f"+4860{n % PHONES:07d}", NUMBER, "x", at, at, "mailed")
            for n in range(mos)
            for at in (NOW - days * DAY + (n + 1) * days * DAY / mos,)
        ],
    )
    conn.commit()
    conn.close()
    return sms


async def step_back(path: Path, seconds: float) -> tuple[float, float, int, int, float, float]:
    """The look handling a step back of `seconds`, with a ticker beside it: (the longest gap between
    the ticker's turns, the move's seconds, the writes the look made, the most rows one of them
    changed, the longest write's seconds whole and its statements' seconds)."""
    clocks = Clocks()
    store = Store.open(path, clock=lambda: clocks.wall)
    store.db.serve()
    unused: Any = None
    hk = Housekeeping(store, unused, unused, dict, Path("/nonexistent"), monotonic=lambda: clocks.boot)
    await hk.check_clock()
    await store.write(lambda: store.db.conn.execute("INSERT INTO billing_state VALUES ('bench', '')"))
    writes: list[tuple[int, float, float]] = []  # (rows changed, seconds whole, the statements' seconds)
    write = store.write

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        ran: list[tuple[int, float]] = []

        def counting() -> Any:
            before, started = store.db.conn.total_changes, time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                ran.append((store.db.conn.total_changes - before, time.perf_counter() - started))

        started = time.perf_counter()
        try:
            return await write(counting)
        finally:
            writes.append((ran[0][0] if ran else 0, time.perf_counter() - started, ran[0][1] if ran else 0.0))

    store.write = counted  # type: ignore[method-assign]
    worst, ticking = 0.0, True

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while ticking:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst, last = max(worst, now - last), now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    clocks.wall -= seconds
    clocks.boot += 1.0
    started = time.perf_counter()
    await hk.check_clock()
    took = time.perf_counter() - started
    ticking = False
    await tick
    store.close()
    rows = max((n for n, _, _ in writes), default=0)
    longest = max(writes, key=lambda w: w[1], default=(0, 0.0, 0.0))
    return worst, took, len(writes), rows, longest[1], longest[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=28_575)
    parser.add_argument("--mo-per-day", type=int, default=2_000)
    parser.add_argument("--days", type=float, nargs="+", default=[1.0, 7.0, 30.0])
    args = parser.parse_args()
    for days in args.days:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "db.sqlite"
            Store.open(path).close()
            sms = fill(path, days + 1.0, args.per_day, args.mo_per_day)
            worst, took, writes, rows, longest, statements = asyncio.run(step_back(path, days * DAY))
            print(
                f"step back of {days:g} day(s), {sms} SMS in the store: longest loop stall"
                f" {worst * 1000:.0f} ms, move {took:.2f} s in {writes} write(s), the largest"
                f" {rows} rows changed, the longest write {longest * 1000:.0f} ms whole (await to end),"
                f" its statements {statements * 1000:.0f} ms"
            )


if __name__ == "__main__":
    main()
