"""The usage counters charged in one statement whatever the number of (scope, period) pairs: the
statement's text is kept per number of pairs, so a mail of another shape (an account with no user
scope, a new period) must still charge exactly its own counters, each once."""

from __future__ import annotations

from pathlib import Path

from gateway.store.db import Store
from tests.test_store import Clock


def test_counters_of_every_shape_are_charged_once_each(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    accounts = store.accounts
    with store.db.transaction():
        accounts.add_usage(["user:1", "account:1"], ["2026-12-06", "2026-12"], 2)
        accounts.add_usage(["account:1"], ["2026-12-06", "2026-12"], 3)
        accounts.add_usage(["user:1", "account:1"], ["2026-12-06", "2026-12"], 1)
        accounts.add_usage(["user:2"], ["2026-12"], 5)
        accounts.add_usage([], ["2026-12"], 7)  # no scope: no statement, nothing charged
        accounts.add_usage(["user:2"], [], 7)
    expected = {
        ("user:1", "2026-12-06"): 3,
        ("user:1", "2026-12"): 3,
        ("account:1", "2026-12-06"): 6,
        ("account:1", "2026-12"): 6,
        ("user:2", "2026-12"): 5,
    }
    assert {key: accounts.usage(*key) for key in expected} == expected
    rows = store.db.conn.execute("SELECT scope, period, parts FROM usage").fetchall()
    assert {(s, p): n for s, p, n in rows} == expected
    store.close()
