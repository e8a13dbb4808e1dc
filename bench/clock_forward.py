"""How long a step forward of the wall clock holds the event loop, and what the reply windows that count
it (`gateway.store.forwardsteps`) cost an answer and the retention purge, on a store of `--sms` SMS
sent over the last week (200,000 by default) to 20,000 phones, each texted by two of 50 users.

Printed: the clock check's look that handles a step of 8 days (its one write: the validities of the
SMS still waiting and the step kept); the same rows' times moved forward instead, every row a reply
window reaches (the design withdrawn for holding the loop); for comparison, a look handling a step
back of a day (its last day's SMS move in one write); one answer's match (`reached.answer_of`) and a
purge batch of 1,000 conversations, each with no step kept and with the step kept; and what an answer
no conversation takes reads of the clock besides: its note's "N days ago" on the phone's last SMS
(`lastsms.last_sms`) and whether the number it came to is one account's own yet (`inbound.moved_until`,
over `SENDERS` numbers accounts left over the last 120 days). Times are wall-clock on this machine, the
medians of `--runs` runs where repeated.

Usage: python bench/clock_forward.py [--sms 200000] [--runs 5]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.clock_store import DAY, NOW, NUMBER, PHONES, WAITING, Clocks, fill_sent, opened  # noqa: E402
from gateway.conversations import inbound, queries, reached  # noqa: E402
from gateway.conversations.lastsms import last_sms  # noqa: E402
from gateway.conversations.repo import ConversationsRepo  # noqa: E402
from gateway.store.db import Store  # noqa: E402
from gateway.store.forwardsteps import FORWARD_KEY  # noqa: E402

SENDERS = 200  # numbers accounts stopped sending from, their stops spread over the last 120 days
STEP = 8 * DAY + 1.0  # the step forward, made in the second between two looks


def fill(path: Path, sms: int) -> None:
    """The SMS, one part each, sent evenly over the last 7 days; the last `WAITING` still queued."""
    conn = sqlite3.connect(path)
    fill_sent(conn, 7, sms)
    # On the database's clock, as its triggers stamp them (`inbound._LEFT_LATELY` reads that clock).
    left = time.time() - 120 * DAY
    conn.executemany(
        "INSERT INTO account_senders (account_id, sender, since, until) VALUES (1, ?, ?, ?)",
        [(f"+4850{n:07d}", left, left + n * 120 * DAY / SENDERS) for n in range(SENDERS)],
    )
    conn.commit()
    conn.close()


async def step_look(path: Path, seconds: float = STEP) -> tuple[float, float]:
    """Seconds of a look that finds no step, and of the one that handles a step forward of 8 days (the
    loop is held for its write)."""
    clocks = Clocks()
    store, hk = await opened(path, clocks)
    clocks.wall += 1.0
    clocks.boot += 1.0
    started = time.perf_counter()
    await hk.check_clock()
    plain = time.perf_counter() - started
    clocks.wall += seconds
    clocks.boot += 1.0
    started = time.perf_counter()
    await hk.check_clock()
    took = time.perf_counter() - started
    store.close()
    return plain, took


def moved_instead(path: Path) -> float:
    """Seconds of moving every time a reply window reaches forward by the step (on a copy of the store)."""
    conn = sqlite3.connect(path)
    since = NOW - 7 * DAY
    started = time.perf_counter()
    conn.execute("UPDATE messages SET created_at = created_at + ? WHERE created_at >= ?", (8 * DAY, since))
    conn.execute("UPDATE parts SET submitted_at = submitted_at + ? WHERE submitted_at >= ?", (8 * DAY, since))
    conn.execute(
        "UPDATE conversations SET last_mt_at = last_mt_at + ? WHERE last_mt_at >= ?", (8 * DAY, since)
    )
    conn.commit()
    took = time.perf_counter() - started
    conn.close()
    return took


def answers(path: Path, runs: int, ahead: float) -> tuple[float, int]:
    """Median seconds of one answer's match a minute after the last SMS (`ahead`: on a clock stepped so
    far since), over `runs` x 200 phones, and how many of the 200 found their conversation."""
    conn = sqlite3.connect(path)
    at = conn.execute("SELECT MAX(last_mt_at) FROM conversations").fetchone()[0] + 60.0 + ahead
    times, found = [], 0
    for _ in range(runs):
        found = 0
        for n in range(200):
            started = time.perf_counter()
            found += (
                reached.answer_of(conn, f"+4860{n * 97 % PHONES:07d}", NUMBER, at, 7 * DAY, "PL") is not None
            )
            times.append(time.perf_counter() - started)
    conn.close()
    return statistics.median(times), found


def unmatched(path: Path, runs: int, ahead: float) -> tuple[float, float]:
    """Median seconds of an unmatched answer's note on the phone's last SMS, 8 days after it (`ahead`:
    on a clock stepped so far since), and of the check whether a number is one account's own, each
    over `runs` x 200 phones."""
    at = NOW + 8 * DAY + ahead
    store = Store.open(path, clock=lambda: at)
    repo = ConversationsRepo(store.db, store.clock)
    cfg: Any = SimpleNamespace(
        gateway=SimpleNamespace(timezone="Europe/Warsaw", default_region="PL", retention_days=90.0),
        replies=SimpleNamespace(window_days=7.0, window_seconds=7 * DAY),
    )
    notes, owners = [], []
    for _ in range(runs):
        for n in range(200):
            last = repo.last_on(f"+4860{n * 97 % PHONES:07d}", NUMBER)
            assert last is not None
            started = time.perf_counter()
            last_sms(repo, cfg, last, at)
            notes.append(time.perf_counter() - started)
            started = time.perf_counter()
            inbound.moved_until(store.db.conn, cfg, f"+4850{n % SENDERS:07d}", 2)
            owners.append(time.perf_counter() - started)
    store.close()
    return statistics.median(notes), statistics.median(owners)


def purge(path: Path, runs: int, ahead: float) -> float:
    """Median seconds of a purge batch of 1,000 conversations (rolled back after each), 2 days after the
    last SMS (`ahead`: on a clock stepped so far since)."""
    conn = sqlite3.connect(path)
    cutoff = conn.execute("SELECT MAX(last_mt_at) FROM conversations").fetchone()[0] + 2 * DAY + ahead
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        queries.purge_old(conn, cutoff, 7 * DAY, (0.0, 0), 1000)
        times.append(time.perf_counter() - started)
        conn.rollback()
    conn.close()
    return statistics.median(times)


def main() -> None:
    json.dumps([[0.0, 0.0]])  # the encoder imported, as in the daemon, which writes JSON all the time
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sms", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "db.sqlite"
        Store.open(path).close()
        fill(path, args.sms)
        copy = Path(directory) / "moved.sqlite"
        copy.write_bytes(path.read_bytes())
        back = Path(directory) / "back.sqlite"
        back.write_bytes(path.read_bytes())
        plain_answer, plain_purge = answers(path, args.runs, 0.0), purge(path, args.runs, STEP)
        plain_unmatched = unmatched(path, args.runs, 0.0)
        plain_look, step = asyncio.run(step_look(path))
        kept = (
            sqlite3.connect(path)
            .execute("SELECT value FROM billing_state WHERE key = ?", (FORWARD_KEY,))
            .fetchone()
        )
        stepped_answer, stepped_purge = answers(path, args.runs, STEP), purge(path, args.runs, STEP)
        stepped_unmatched = unmatched(path, args.runs, STEP)
        print(f"store: {args.sms} SMS, {WAITING} waiting; step kept: {kept[0] if kept else None}")
        print(f"look: {plain_look * 1000:.1f} ms without a step, {step * 1000:.1f} ms handling one of 8 days")
        print(f"moving every row a window reaches instead: {moved_instead(copy) * 1000:.1f} ms")
        stepped_back = asyncio.run(step_look(back, 1.0 - DAY))[1]  # its last day's SMS move, in one write
        print(f"for comparison, a look handling a step back of a day: {stepped_back * 1000:.1f} ms")
        found, stepped_found = plain_answer[1], stepped_answer[1]
        print(
            f"one answer's match: {plain_answer[0] * 1e6:.0f} us without a step ({found}/200 answered),"
            f" {stepped_answer[0] * 1e6:.0f} us after it ({stepped_found}/200)"
        )
        print(
            f"a purge batch of 1,000, 10 days on by the clock: {plain_purge * 1e3:.1f} ms not knowing the"
            f" step (all deleted), {stepped_purge * 1e3:.1f} ms knowing it (all kept)"
        )
        (note, owner), (stepped_note, stepped_owner) = plain_unmatched, stepped_unmatched
        print(
            f"an unmatched answer's note on the last SMS: {note * 1e6:.0f} us without a step,"
            f" {stepped_note * 1e6:.0f} us after it; whether its number is one account's own"
            f" ({SENDERS} numbers left): {owner * 1e6:.0f} us, {stepped_owner * 1e6:.0f} us"
        )


if __name__ == "__main__":
    main()
