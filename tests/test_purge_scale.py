"""The retention purge on a large store: each chunk reads an index range of old rows, never the rest.

A year of traffic (2 M messages) held the event loop 0.4-0.6 s a chunk: the outbox chunk read and
sorted every sent mail, the conversations chunk scanned every conversation, and the last emails
chunk walked every newer email by id. SQLite plans without statistics (the store never runs
ANALYZE), so the plans of a small store the code creates are the plans of a large one.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from gateway.retentionpurge import purge_before
from gateway.store.db import Store

T = TypeVar("T")

DAY = 86400.0
NOW = time.time()
RETENTION = 90 * DAY
CUTOFF = NOW - RETENTION
WINDOW = 7 * DAY  # [replies] window_days
OLD = CUTOFF - 40 * DAY  # past the retention and every reply window
RECENT = NOW - DAY
# The tables the purge deletes from; a SCAN of any of them reads it whole.
PURGED = ("emails", "messages", "parts", "dlrs", "mo", "outbox", "conversations", "concat_refs")


def _email(conn: sqlite3.Connection, at: float, state: str, *, part: bool = True) -> int:
    """An email with one message (in `state`) and, with `part`, its part and delivery report."""
    email = conn.execute(
        "INSERT INTO emails (mail_from, text, received_at) VALUES ('anna@acme.example', 'x', ?)", (at,)
    ).lastrowid
    message = conn.execute(
        "INSERT INTO messages (email_id, recipient, source, text, coding, parts_total, state, created_at,"
        " expires_at) VALUES (?, '+48601000000', '+48100', 'x', 0, 1, ?, ?, ?)",
        (email, state, at, at),
    ).lastrowid
    if part:
        part_id = conn.execute(
            "INSERT INTO parts (message_id, seq, state, next_attempt_at, expires_at, destination, source,"
            " data_coding, payload, udh, text) VALUES (?, 1, ?, ?, ?, '+48601000000', '+48100', 0, x'78',"
            " x'', 'x')",
            (message, state, at, at),
        ).lastrowid
        conn.execute(
            "INSERT INTO dlrs (link, smsc_id, status, part_id, received_at)"
            " VALUES ('main', ?, 'DELIVRD', ?, ?)",
            (str(part_id), part_id, at),
        )
    assert email is not None
    return email


def seed(conn: sqlite3.Connection, recent: int) -> dict[str, set[Any]]:
    """Old rows the purge deletes, interleaved with old rows it must keep, and `recent` rows of each
    kind; returns what must survive, table by table."""
    keep: dict[str, set[Any]] = {"emails": set(), "mo": set(), "outbox": set(), "conversations": set()}
    conn.execute("BEGIN")
    # Emails: every third old one has an SMS still under way (kept), the others are finished.
    for i in range(12):
        email = _email(conn, OLD + i, "queued" if i % 3 == 1 else "delivered")
        if i % 3 == 1:
            keep["emails"].add(email)
    for _ in range(recent):
        keep["emails"].add(_email(conn, RECENT, "delivered", part=False))
    # Delivery reports that matched no part: the old go, the recent stay.
    for at in (OLD, OLD + 1, OLD + 2, RECENT, RECENT):
        conn.execute(
            "INSERT INTO dlrs (link, smsc_id, status, received_at) VALUES ('main', 'stale', 'DELIVRD', ?)",
            (at,),
        )
    for i in range(5):
        conn.execute(
            "INSERT INTO mo (link, source, destination, text, received_at)"
            " VALUES ('main', ?, '+48100', 'x', ?)",
            (f"+4860100{i:04d}", OLD + i),
        )
    keep["mo"] = {
        conn.execute(
            "INSERT INTO mo (link, source, destination, text, received_at)"
            " VALUES ('main', '+48601', '+48100', 'x', ?)",
            (RECENT,),
        ).lastrowid
        for _ in range(recent)
    }
    # Outbox: old mail sent or failed goes; old mail not yet handed to the relay stays.
    for i, state in enumerate(("sent", "queued", "failed", "active", "sent", "failed", "queued", "sent")):
        mail = conn.execute(
            "INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at, created_at)"
            " VALUES ('bounce', '', 'anna@acme.example', x'78', ?, ?, ?)",
            (state, OLD + i, OLD + i),
        ).lastrowid
        if state in ("queued", "active"):
            keep["outbox"].add(mail)
    for _ in range(recent):
        keep["outbox"].add(
            conn.execute(
                "INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at, created_at)"
                " VALUES ('bounce', '', 'anna@acme.example', x'78', 'sent', ?, ?)",
                (RECENT, RECENT),
            ).lastrowid
        )
    # Conversations go once older than the retention plus their account's window (or the
    # installation's): a 3-day account's go before, a 30-day account's after, the rest in between,
    # so that the ones kept sit among the ones deleted in the time index.
    short = conn.execute("INSERT INTO accounts (name, reply_window_days, created_at) VALUES ('short', 3, 0)")
    long = conn.execute("INSERT INTO accounts (name, reply_window_days, created_at) VALUES ('long', 30, 0)")
    plain = conn.execute("INSERT INTO accounts (name, created_at) VALUES ('plain', 0)")
    windows = {short.lastrowid: 3 * DAY, long.lastrowid: 30 * DAY, plain.lastrowid: WINDOW, None: WINDOW}
    n = 0
    for days in (2, 4, 6, 8, 20, 29, 31, 35):
        for account, window in windows.items():
            n += 1
            at = CUTOFF - days * DAY
            conv = _conversation(conn, n, account, at)
            if at >= CUTOFF - window:
                keep["conversations"].add(conv)
    for _ in range(recent):
        n += 1
        keep["conversations"].add(_conversation(conn, n, plain.lastrowid, RECENT))
    conn.execute("COMMIT")
    return keep


def _conversation(conn: sqlite3.Connection, n: int, account: int | None, at: float) -> int:
    row = conn.execute(
        "INSERT INTO conversations (phone, number, user_email, account_id, domain, text, started_at,"
        " last_mt_at) VALUES (?, '+48100200300', 'anna@acme.example', ?, 'sms.example.com', 'x', ?, ?)",
        (f"+48602{n:06d}", account, at, at),
    ).lastrowid
    assert row is not None
    return row


def survivors(conn: sqlite3.Connection) -> dict[str, set[Any]]:
    return {
        t: {r[0] for r in conn.execute(f"SELECT id FROM {t}")}
        for t in ("emails", "mo", "outbox", "conversations")
    }


def counting(store: Store, conn: sqlite3.Connection, steps: list[int]) -> Callable[..., Any]:
    """`store.write` that counts the SQLite VM steps (in hundreds) of each piece of work it runs."""
    write = store.write

    async def counted(work: Callable[[], T], **kw: Any) -> T:
        def run() -> T:
            ticks = [0]

            def tick() -> int:
                ticks[0] += 1
                return 0  # go on

            conn.set_progress_handler(tick, 100)
            try:
                return work()
            finally:
                conn.set_progress_handler(None, 0)
                steps.append(ticks[0])

        return await write(run, **kw)

    return counted


async def purge_world(tmp_path: Path, recent: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Seed a store, purge it in chunks of 2, check what survived; the most steps one chunk took."""
    store = Store.open(tmp_path / f"purge-{recent}.db")
    try:
        conn = store.db.conn
        keep = seed(conn, recent)
        steps: list[int] = []
        monkeypatch.setattr(store, "write", counting(store, conn, steps))
        removed = await purge_before(store, CUTOFF, chunk=2, reply_window=WINDOW)
        assert removed == 8  # the old emails whose SMS are all final
        assert survivors(conn) == keep
        # The finished mail's messages, parts and DLRs went with it; the recent unmatched DLRs stayed.
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == len(keep["emails"])
        assert conn.execute("SELECT COUNT(*) FROM parts").fetchone()[0] == 4
        assert conn.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0] == 4 + 2
        return max(steps)
    finally:
        store.close()


async def test_a_purge_chunk_costs_the_same_however_many_recent_rows_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same old rows among 10 times as many recent ones: no chunk may do more work for them.
    small = await purge_world(tmp_path, 300, monkeypatch)
    large = await purge_world(tmp_path, 3000, monkeypatch)
    assert large <= small * 1.5 + 5, (small, large)


def _plan(conn: sqlite3.Connection, sql: str) -> str:
    # The trace shows the start of a walk, -inf, as SQL cannot read it back: -1e999 is the same.
    return " | ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql.replace("-Inf", "-1e999")))


async def test_each_purge_chunk_reads_an_index_range_and_sorts_nothing(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "plans.db")
    try:
        conn = store.db.conn
        seed(conn, 20)
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        try:
            await purge_before(store, CUTOFF, chunk=2, reply_window=WINDOW)
        finally:
            conn.set_trace_callback(None)
        plans = {sql: _plan(conn, sql) for sql in seen if re.match(r"\s*(SELECT|DELETE)", sql)}
        scans = re.compile(rf"\bSCAN ({'|'.join(PURGED)})\b")
        for sql, p in plans.items():
            assert "TEMP B-TREE" not in p and not scans.search(p), f"{sql}\n  -> {p}"

        def plan_of(pattern: str) -> str:
            found = {p for sql, p in plans.items() if re.search(pattern, sql)}
            assert found, pattern
            return " || ".join(sorted(found))

        expected = {  # the statement that picks a chunk's rows, and the time index whose range it reads
            r"FROM emails e WHERE e\.received_at": "emails_received (received_at>? AND received_at<?)",
            r"SELECT id FROM mo WHERE": "mo_received (received_at<?)",
            r"SELECT id FROM outbox WHERE": "outbox_age (state=? AND created_at<?)",
            r"FROM conversations WHERE last_mt_at": "conversations_age (last_mt_at>? AND last_mt_at<?)",
        }
        for pattern, index in expected.items():
            assert index in plan_of(pattern), pattern
    finally:
        store.close()


async def purge_among_sent(tmp_path: Path, sent: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """The old rows of `seed` purged among `sent` recent SMS delivered (a part each); the most steps
    one chunk took."""
    store = Store.open(tmp_path / f"sent-{sent}.db")
    try:
        conn = store.db.conn
        seed(conn, 20)
        conn.execute("BEGIN")
        for _ in range(sent):
            _email(conn, RECENT, "delivered")
        conn.execute("COMMIT")
        steps: list[int] = []
        monkeypatch.setattr(store, "write", counting(store, conn, steps))
        assert await purge_before(store, CUTOFF, chunk=2, reply_window=WINDOW) == 8
        # What the purge deleted stays counted for /metrics: 8 old SMS delivered, a part each.
        kept = "SELECT label, state, n FROM purged_counts WHERE metric = 'parts'"
        assert conn.execute(kept).fetchall() == [("", "delivered", 8)]
        return max(steps)
    finally:
        store.close()


async def test_a_purge_chunk_counts_the_parts_it_deletes_and_reads_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a chunk kept counted of its parts read every part in a final state (by parts_due's state
    # range, the id list checked on each): a year's 2.6 M parts read for each 25 emails, on the loop.
    small = await purge_among_sent(tmp_path, 300, monkeypatch)
    large = await purge_among_sent(tmp_path, 3000, monkeypatch)
    assert large <= small * 1.5 + 5, (small, large)
