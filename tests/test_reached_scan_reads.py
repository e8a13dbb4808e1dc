"""A scan of the SMS to a phone (`reached.messages_to`) reads the parts' claims and notes only for the
answer wait, the one caller that asks whether a submit is unanswered (`Sent.unanswered`).

Every scan read it: a conversation's state, the pool's look at who holds a number, a mail's quote, each
paid a look at each SMS's parts for a column they never read. What a statement reads is told by
SQLite's authorizer as it is prepared, on a connection of its own to a real store's file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.conversations import reached
from gateway.smtp.accept import accept
from gateway.store.db import Store
from tests.test_store import Clock, acceptance

PHONE = "+48601000001"


def columns_read(path: Path, in_flight: bool | None) -> tuple[set[str], list[reached.Sent]]:
    """The parts' columns a scan's statement reads, and what it found."""
    conn = sqlite3.connect(path)
    read: set[str] = set()

    def seen(action: int, table: str | None, column: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_READ and table == "parts" and column:
            read.add(column)
        return sqlite3.SQLITE_OK

    conn.set_authorizer(seen)
    flying = {} if in_flight is None else {"in_flight": in_flight}
    scan = reached.messages_to(conn, PHONE, 0.0, float("inf"), ["anna@acme.example"], **flying)
    conn.close()
    return read, scan.sent


async def test_only_the_answer_wait_reads_the_claims(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    store.db.serve()
    await accept(store, acceptance([PHONE], parts=2))
    await store.write(lambda: store.queue.claim_due(10))  # in flight: claimed, not answered
    plain, sent = columns_read(store.db.path, None)
    assert "claimed_at" not in plain and "error" not in plain, plain
    assert [s.unanswered for s in sent] == [None]
    flying, sent = columns_read(store.db.path, True)
    assert {"claimed_at", "error"} <= flying, flying
    assert [s.unanswered for s in sent] == [Clock().t]  # claimed now
    store.close()
