"""How long a step back of the wall clock holds the event loop, on a store of `--per-day` SMS a day
(28,575 by default) sent over the days the step reaches and one more, to 20,000 phones, each texted by
two of 50 users, with `--mo-per-day` answers a day.

Printed for each step (`--days`, 1, 7 and 30 by default): the longest the loop went without running
a ticker task (a 1 ms sleep in a loop) while the clock check's look handled the step, and how many
times it went over `STALL_SECONDS` (at load, one stall of a few hundred ms may be the machine's), how
long the whole move took, and how many writes it made and the most rows one of them moved (`parts` of
the `clock.stepped_back` line aside, counted by the store's write hook), and the longest write: whole
(from its await to its end: the statements, the commit and its wait for the disk), and of it the
statements; and the longest any write held the loop (its statements and its batch's commit: what the
chunks are paced on, `gateway.store.writehold.Hold`). Times are wall-clock on this machine.

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

from bench.clock_store import DAY, NOW, NUMBER, PHONES, Clocks, fill_sent, opened  # noqa: E402
from gateway.store.db import Store  # noqa: E402
from gateway.store.writehold import Hold  # noqa: E402

# The loop's stalls counted beside the longest.
STALL_SECONDS = 0.05


def fill(path: Path, days: float, per_day: int, mo_per_day: int) -> int:
    """The SMS, one part each, sent evenly over the last `days`; the last `WAITING` still queued; MOs
    likewise. Returns how many SMS."""
    sms = int(days * per_day)
    conn = sqlite3.connect(path)
    fill_sent(conn, days, sms)
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


async def step_back(
    path: Path, seconds: float
) -> tuple[tuple[float, int], float, int, int, float, float, float]:
    """The look handling a step back of `seconds`, with a ticker beside it: (the longest gap between
    the ticker's turns and how many were over `STALL_SECONDS`, the move's seconds, the writes the look
    made, the most rows one of them changed, the longest write's seconds whole and its statements'
    seconds, the longest hold)."""
    clocks = Clocks()
    store, hk = await opened(path, clocks)
    writes: list[tuple[int, float, float]] = []  # (rows changed, seconds whole, the statements' seconds)
    holds: list[float] = []  # each write's hold on the loop: its statements and its batch's commit
    write = store.write

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        ran: list[tuple[int, float]] = []

        def counting() -> Any:
            before, started = store.db.conn.total_changes, time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                ran.append((store.db.conn.total_changes - before, time.perf_counter() - started))

        started, hold = time.perf_counter(), Hold()
        try:
            return await write(store.db.timed(counting, hold))
        finally:
            writes.append((ran[0][0] if ran else 0, time.perf_counter() - started, ran[0][1] if ran else 0.0))
            holds.append(hold.seconds)

    store.write = counted  # type: ignore[method-assign]
    ticking, gaps = True, list[float]()

    async def ticker() -> None:
        last = time.perf_counter()
        while ticking:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

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
    stalls = (max(gaps, default=0.0), sum(1 for g in gaps if g > STALL_SECONDS))
    return stalls, took, len(writes), rows, longest[1], longest[2], max(holds, default=0.0)


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
            stalls, took, writes, rows, longest, statements, held = asyncio.run(step_back(path, days * DAY))
            print(
                f"step back of {days:g} day(s), {sms} SMS in the store: longest loop stall"
                f" {stalls[0] * 1000:.0f} ms ({stalls[1]} over {STALL_SECONDS * 1000:.0f} ms),"
                f" move {took:.2f} s in {writes} write(s), the largest"
                f" {rows} rows changed, the longest write {longest * 1000:.0f} ms whole (await to end),"
                f" its statements {statements * 1000:.0f} ms; the longest hold of the loop"
                f" {held * 1000:.0f} ms"
            )


if __name__ == "__main__":
    main()
