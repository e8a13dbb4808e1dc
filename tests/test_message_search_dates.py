"""The message search by dates (panel, CSV export, `queue list --since`) on a real SQLite file.

By `created_at` alone the search walked every message newer than its dates (a January search on a
year of traffic read all 1.48 M rows; a month with no SMS read them all to show nothing). It now
walks the ids between the lowest and the highest id of the dates' messages. Ids grow with time
but times do not grow with ids: after a step back of the clock a message carries an earlier time
than the ones before it. The data here has such a step inside the dates searched, and every page
must be the one the search by `created_at` alone gave.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.store.db import Store
from gateway.store.mailrecord import search_messages
from gateway.store.records import Acceptance, NewMessage, NewPart

T0 = 1_767_222_000.0  # 2026-01-01 00:00 in Warsaw
STEP = 10 * 60  # a message every ten minutes
BACK = 6 * 3600  # the clock stepped back six hours after message 200
SINCE, UNTIL = T0 + 24 * 3600, T0 + 30 * 3600  # both sides of the step fall in these dates


def acceptance(account_id: int, i: int) -> Acceptance:
    """A mail to one number (every third to two), as the SMTP session hands it to the store."""
    numbers = [f"+4860100{i % 5:04d}"] + ([f"+4860200{i % 5:04d}"] if i % 3 == 0 else [])
    messages = [NewMessage(n, "ACME", "hi", 0, [NewPart(1, 0, b"hi", b"", "hi")]) for n in numbers]
    return Acceptance(
        f"user{i % 3}@acme.example", "192.0.2.1", account_id, None, None, None, "", "hi", messages, 86400.0
    )


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A store as the daemon makes it (no ANALYZE) holding 400 mails over two accounts, written by the
    acceptance's own write on a clock that steps back six hours after mail 200: the messages of mails
    144-179 and 201-215 are in the dates, those of 180-200 (before the step, later than the dates)
    sit between them in id order."""
    now = [T0]
    store = Store.open(tmp_path / "smsgw.db", clock=lambda: now[0])
    c = store.db.conn
    accounts = [store.accounts.add_account(name).id for name in ("acme", "beta")]
    with store.db.transaction():
        for i in range(1, 401):
            now[0] = T0 + i * STEP - (BACK if i > 200 else 0)
            ids = store.queue.insert_email(acceptance(accounts[i % 2], i)).message_ids
            state = "failed" if i % 7 == 0 else "delivered"  # as the reports settled them
            marks = ",".join("?" * len(ids))
            c.execute(f"UPDATE messages SET state = ? WHERE id IN ({marks})", (state, *ids))
    try:
        yield c
    finally:
        store.close()


def by_times(
    conn: sqlite3.Connection, account: int | None, since: float | None, until: float | None, **kw: Any
) -> list[int]:
    """Every id the search by `created_at` alone found, newest first (the old query, unpaged)."""
    where = ["m.created_at >= ?", "m.created_at < ?"]
    args: list[Any] = [-1e18 if since is None else since, 1e18 if until is None else until]
    for column, value in (("m.account_id", account), ("m.state", kw.get("state"))):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    sql = "SELECT m.id FROM messages m NOT INDEXED JOIN emails e ON e.id = m.email_id WHERE "
    return [r[0] for r in conn.execute(sql + " AND ".join(where) + " ORDER BY m.id DESC", args)]


def paged(conn: sqlite3.Connection, account: int | None, limit: int, **kw: Any) -> list[int]:
    """All pages of the search, each from the last id of the one before, as the panel asks for them."""
    found: list[int] = []
    while True:
        before = found[-1] if found else None
        page = search_messages(conn, account, before_id=before, limit=limit, **kw)
        found += [r["id"] for r in page]
        if len(page) < limit:
            return found


SEARCHES = [
    {},
    {"state": "delivered"},
    {"state": "failed"},
]


@pytest.mark.parametrize("account", [None, 1, 2])
@pytest.mark.parametrize("filters", SEARCHES)
@pytest.mark.parametrize(
    "dates", [(SINCE, UNTIL), (SINCE, None), (None, UNTIL), (T0 + 200 * STEP - BACK, T0 + 201 * STEP)]
)
def test_the_pages_are_those_of_the_search_by_times_across_a_step_back(
    conn: sqlite3.Connection, account: int | None, filters: dict[str, str], dates: tuple[Any, Any]
) -> None:
    since, until = dates
    expected = by_times(conn, account, since, until, **filters)
    assert expected, "the dates find messages"
    for limit in (1, 7, 50):
        assert paged(conn, account, limit, since=since, until=until, **filters) == expected


def test_the_step_is_inside_the_dates(conn: sqlite3.Connection) -> None:
    # What the test above relies on: the dates' messages are not one run of ids.
    mails = [r[0] for r in conn.execute("SELECT email_id FROM messages ORDER BY id")]
    ids = by_times(conn, None, SINCE, UNTIL)
    of = {mails[i - 1] for i in ids}
    assert min(of) == 144 and max(of) == 215 and not set(range(180, 201)) & of


def test_dates_with_no_message_find_none(conn: sqlite3.Connection) -> None:
    assert search_messages(conn, None, since=T0 - 86400, until=T0) == []
    assert search_messages(conn, 2, since=T0 + 100 * 86400, until=T0 + 101 * 86400) == []


def plans(conn: sqlite3.Connection, **kw: Any) -> list[str]:
    """The plan of each statement the search ran."""
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        search_messages(conn, kw.pop("account", None), limit=50, **kw)
    finally:
        conn.set_trace_callback(None)
    return [" | ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql)) for sql in seen]


@pytest.mark.parametrize(
    "search",
    [
        {"since": SINCE, "until": UNTIL},
        {"since": SINCE},
        {"until": UNTIL},
        {"since": SINCE, "until": UNTIL, "state": "delivered"},
        {"since": SINCE, "until": UNTIL, "state": "failed"},
        {"since": SINCE, "until": UNTIL, "account": 1},
        {"since": SINCE, "until": UNTIL, "account": 1, "state": "failed"},
        {"since": T0 - 86400, "until": T0},
    ],
)
def test_a_search_by_dates_reads_no_table_whole(conn: sqlite3.Connection, search: dict[str, Any]) -> None:
    # SCAN m: every message read (off the table or off an index of all of them) to find the dates'.
    found = plans(conn, **search)
    assert found
    for plan in found:
        for table in ("m", "messages", "e", "emails"):
            assert f"SCAN {table} " not in plan + " ", found
    # The walk itself goes by id, bounded on both sides, newest first with no sort.
    walk = found[-1]
    if search.get("since") == T0 - 86400:  # dates with no message: the window says so, no walk
        assert len(found) == 1 and ("emails_received" in walk or "messages_billing" in walk), found
        return
    assert "rowid>? AND rowid<?" in walk or "id>? AND id<?" in walk, walk
    assert "TEMP B-TREE" not in walk, walk


def test_an_exports_later_pages_reuse_the_window(conn: sqlite3.Connection) -> None:
    # The CSV export asks for a thousand rows at a time: the window is looked up once, and its later
    # pages (below the first page's ids, where no message written since can be) find the same rows.
    from gateway.store.mailrecord import date_window

    window = date_window(conn, None, SINCE, UNTIL)
    expected = by_times(conn, None, SINCE, UNTIL)
    assert window is not None and window[0] <= min(expected) and window[1] >= max(expected)
    expected = by_times(conn, None, SINCE, UNTIL)
    found: list[int] = []
    while True:
        before = found[-1] if found else None
        page = search_messages(
            conn, None, since=SINCE, until=UNTIL, before_id=before, limit=10, window=window
        )
        found += [r["id"] for r in page]
        if len(page) < 10:
            break
    assert found == expected
    assert date_window(conn, None, T0 - 86400, T0) == (1, 0)
    assert date_window(conn, None, None, None) is None
