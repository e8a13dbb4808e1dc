"""Retention purge benchmark: old finished emails among many recent messages, timed end to end.

Builds a store with `--old` finished emails received long ago (one message, part and DLR each)
and `--messages` messages in total, the rest recent (ten per email), then runs the purge the
daemon runs (chunked, on the event loop, group fsync) and prints how long it took, how many
chunks it wrote and the longest the event loop waited for one of them.

Usage: python bench/purge.py [--old 2000] [--messages 200000]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import retentionpurge  # noqa: E402
from gateway.store.db import Store  # noqa: E402

DAY = 86400.0


def build(path: Path, old: int, messages: int) -> None:
    now = time.time()
    Store.open(path).close()  # schema and migrations
    conn = sqlite3.connect(path)
    recent = messages - old
    rows_per_email = 10
    emails = [(i, "old@acme.example", now - 400 * DAY) for i in range(1, old + 1)]
    emails += [
        (old + 1 + i, "new@acme.example", now - DAY)
        for i in range((recent + rows_per_email - 1) // rows_per_email)
    ]
    msgs = [(i, i, "delivered", now - 400 * DAY) for i in range(1, old + 1)]
    msgs += [(old + 1 + i, old + 1 + i // rows_per_email, "delivered", now - DAY) for i in range(recent)]
    with conn:
        conn.executemany(
            "INSERT INTO emails (id, mail_from, text, received_at) VALUES (?, ?, 'x', ?)", emails
        )
        conn.executemany(
            "INSERT INTO messages (id, email_id, recipient, source, text, coding, parts_total, state,"
            " created_at, expires_at) VALUES (?, ?, '+48601000000', '+48100', 'x', 0, 1, ?, ?, 0)",
            msgs,
        )
        conn.executemany(
            "INSERT INTO parts (id, message_id, seq, state, next_attempt_at, expires_at, destination, source,"
            " data_coding, payload, udh, text) VALUES (?, ?, 1, 'delivered', 0, 0, '+48601000000', '+48100',"
            " 0, x'78', x'', 'x')",
            [(m[0], m[0]) for m in msgs],
        )
        conn.executemany(
            "INSERT INTO dlrs (link, smsc_id, status, part_id, received_at)"
            " VALUES ('main', ?, 'delivered', ?, ?)",
            [(str(m[0]), m[0], m[3]) for m in msgs],
        )
    conn.close()


async def purge(path: Path) -> None:
    store = Store.open(path, group_fsync=True)
    chunks = 0
    write = store.write

    async def counting_write(work):  # type: ignore[no-untyped-def]
        nonlocal chunks
        chunks += 1
        return await write(work)

    store.write = counting_write  # type: ignore[method-assign]
    worst = 0.0
    done = asyncio.Event()

    async def watch_loop() -> None:
        nonlocal worst
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0)
            worst = max(worst, time.perf_counter() - t)

    watcher = asyncio.create_task(watch_loop())
    started = time.perf_counter()
    removed = await retentionpurge.purge_before(store, time.time() - 90 * DAY)
    elapsed = time.perf_counter() - started
    done.set()
    await watcher
    left = store.db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    await store.drain()
    store.close()
    print(f"purged {removed} emails in {elapsed:.2f} s ({chunks} writes); {left} messages left")
    print(f"longest event-loop stall during the purge: {worst * 1000:.1f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", type=int, default=2000)
    p.add_argument("--messages", type=int, default=200_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "smsgw.db"
        t = time.perf_counter()
        build(path, args.old, args.messages)
        print(
            f"built {args.old} old emails among {args.messages} messages in {time.perf_counter() - t:.1f} s"
        )
        asyncio.run(purge(path))


if __name__ == "__main__":
    main()
