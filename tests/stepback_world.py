"""A store of a few days of traffic for the tests of a step back's chunked move (`gateway.stepmoves`), and
a daemon process on a wall clock stepped back by a signal (`python -m tests.stepback_world CONFIG SECONDS
IDS OFFSET`: its wall clock OFFSET seconds off the real one, SIGUSR1 steps it back by SECONDS; each chunk
of a move covers IDS ids)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import time
from pathlib import Path

DAY = 86400.0
NUMBER = "+48100200300"
PHONES, USERS = 300, 7
# The tables and time columns a step back moves, each read by its table's id.
TIMES = {
    "messages": ("created_at",),
    "parts": ("submitted_at", "next_attempt_at", "expires_at"),
    "conversations": ("last_mt_at", "started_at"),
    "mo": ("received_at", "acked_at"),
}


def fill(path: Path, now: float, days: float, sms: int, mos: int) -> None:
    """`sms` SMS (one part each, delivered) and `mos` answers spread over the `days` before `now`, and a
    conversation per phone and user, into a store created already."""
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO accounts (id, name, created_at) VALUES (1, 'acme', 0)")
    last: dict[tuple[str, str], float] = {}
    for i in range(1, sms + 1):
        at = now - days * DAY + i * days * DAY / (sms + 1)
        phone, user = f"+4860{i % PHONES:07d}", f"user{i % USERS}@acme.example"
        conn.execute(
            "INSERT INTO emails (id, account_id, mail_from, text, received_at) VALUES (?,1,?,'x',?)",
            (i, user, at),
        )
        conn.execute(
            "INSERT INTO messages (id, email_id, account_id, recipient, source, text, coding, parts_total,"
            " state, created_at, expires_at) VALUES (?,?,1,?,?,'x',0,1,'delivered',?,?)",
            (i, i, phone, NUMBER, at, at + DAY),
        )
        conn.execute(
            "INSERT INTO parts (id, message_id, seq, state, next_attempt_at, expires_at, destination, source,"
            " data_coding, payload, udh, text, submitted_at) VALUES (?,?,1,'delivered',?,?,?,?,0,x'78',x'',"
            "'x',?)",
            (i, i, at, at + DAY, phone, NUMBER, at + 1.0),
        )
        last[(phone, user)] = at
    conn.executemany(
        "INSERT INTO conversations (phone, number, user_email, account_id, domain, text, started_at,"
        " last_mt_at) VALUES (?,?,?,1,'sms.example.com','x',?,?)",
        [(phone, NUMBER, user, at - 60.0, at) for (phone, user), at in last.items()],
    )
    conn.executemany(
        "INSERT INTO mo (link, source, destination, text, received_at, acked_at, state)"
        " VALUES ('main', ?, ?, 'x', ?, ?, 'mailed')",
        [
            (f"+4860{n % PHONES:07d}", NUMBER, at, at + 0.5)
            for n in range(mos)
            for at in (now - days * DAY + (n + 1) * days * DAY / (mos + 1),)
        ],
    )
    conn.commit()
    conn.close()


def times(path: Path) -> dict[str, list[tuple[float, ...]]]:
    """Every moved table's times, by id."""
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT id, {', '.join(columns)} FROM {table} ORDER BY id").fetchall()
            for table, columns in TIMES.items()
        }
    finally:
        conn.close()


def main() -> None:
    from gateway import stepmoves
    from gateway.config import load_config
    from gateway.daemon import Daemon
    from smsc.outage import boottime

    config, seconds, ids = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    stepmoves.FIRST_CHUNK = stepmoves.FEWEST = stepmoves.MOST = ids
    offset = [float(sys.argv[4])]

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: offset.__setitem__(0, offset[0] - seconds))
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        daemon = Daemon(load_config(config), clock=lambda: time.time() + offset[0], elapsed=boottime)
        task = asyncio.create_task(daemon.run(stop))
        await daemon.ready.wait()
        print("ready", flush=True)
        await task

    asyncio.run(run())


if __name__ == "__main__":
    main()
