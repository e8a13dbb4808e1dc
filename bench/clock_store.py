"""The store the clock-step benches (clock_back.py, clock_forward.py) measure on, and the daemon's
clock check over it: one fill and one set-up, so that the figures of a step back and of a step forward
are taken on the same rows and the same first look."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from gateway.housekeeping import Housekeeping
from gateway.store.db import Store

DAY = 86400.0
NOW = 1_800_000_000.0
NUMBER = "+48100200300"
PHONES, USERS, WAITING = 20_000, 50, 500


class Clocks:
    def __init__(self) -> None:
        self.wall, self.boot = NOW, 1000.0


def fill_sent(conn: sqlite3.Connection, days: float, sms: int) -> None:
    """`sms` SMS of account 1, one part each, sent evenly over the last `days` to `PHONES` phones, each
    texted by two of `USERS` users, with a conversation for each phone and user; the last `WAITING`
    still queued. Not committed: the caller adds its own rows first."""
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


async def opened(path: Path, clocks: Clocks) -> tuple[Store, Housekeeping]:
    """The store on `clocks` and the housekeeping whose clock check handles the steps, after its first
    look (which finds no step and notes the clocks) and a first write: a process's first commit notes
    itself once (`walcheck.note_commit`, ~12 ms), which would otherwise count as the step's."""
    # As the daemon opens it: a commit writes the WAL and its fsync runs in a thread off the loop (without
    # `group_fsync` every COMMIT fsynced on the loop, which the daemon's never do).
    store = Store.open(path, clock=lambda: clocks.wall, group_fsync=True)
    store.db.serve()
    unused: Any = None
    hk = Housekeeping(store, unused, unused, dict, Path("/nonexistent"), monotonic=lambda: clocks.boot)
    await hk.check_clock()
    await store.write(lambda: store.db.conn.execute("INSERT INTO billing_state VALUES ('bench', '')"))
    return store, hk
