"""The search's hint for part of an address ("anna": did you mean anna@acme.example?) reads the
addresses it names, on the panel's reader thread. It read every user of the admin's account (the
operator's: of every account) on the daemon's own connection and filtered them in Python: at 200,000
users each such search held SMTP and the links 1-2 s. Counted in the reads' steps, not in time."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.web.app import WebContext
from tests.test_web_search_errors import error_of
from tests.web_helpers import ADMIN, OPERATOR, PLAIN, as_user, panel_store, web_context

USERS = 3000  # more users in acme: a read of each of them is thousands of steps
STEPS = 300  # the hint's read at most: the email index's few entries of the name, whatever the users


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = panel_store(tmp_path)
    await store.write(lambda: store.accounts.add_user("anna@rival.example", "rival"))

    def many() -> None:
        store.db.conn.executemany(
            "INSERT INTO users (email, account_id, created_at)"
            " SELECT ?, id, 0 FROM accounts WHERE name = 'acme'",
            ((f"u{i:05d}@acme.example",) for i in range(USERS)),
        )

    await store.write(many)
    web = web_context(tmp_path, store)
    yield web
    web.counts.close()
    store.close()


class Steps:
    """SQLite's virtual machine steps on the panel's reader connection, and the loop's statements."""

    def __init__(self, web: WebContext) -> None:
        self.web, self.reader, self.loop = web, 0, list[str]()

    def _step(self) -> int:
        self.reader += 1
        return 0

    async def __aenter__(self) -> Steps:
        def count(conn: sqlite3.Connection) -> None:
            conn.execute("SELECT 1 FROM users LIMIT 0")  # the schema read in first, not counted
            conn.set_progress_handler(self._step, 1)

        await self.web.counts.run(count)
        self.reader = 0
        self.web.store.db.conn.set_trace_callback(self.loop.append)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.web.store.db.conn.set_trace_callback(None)
        await self.web.counts.run(lambda conn: conn.set_progress_handler(None, 1))


def users_read(statements: list[str]) -> list[str]:
    return [s for s in statements if "users" in s]


@pytest.mark.parametrize("path", ["/messages", "/messages.csv"])
async def test_the_hint_reads_off_the_loop_only_the_addresses_it_names(web: WebContext, path: str) -> None:
    async with as_user(web, ADMIN) as c:
        async with Steps(web) as steps:
            r = await c.get(path, params={"user": "anna"})
        assert r.status_code == 400
        assert error_of(r.text) == f"user: 'anna' is not a whole address: did you mean {PLAIN}?"
        assert users_read(steps.loop) == []  # nothing of the users on the daemon's own connection
        assert 0 < steps.reader < STEPS  # with USERS users in the account


async def test_the_operators_hint_across_accounts_reads_as_little(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        async with Steps(web) as steps:
            r = await c.get("/messages", params={"user": "ANNA"})  # any case, as the addresses
        assert error_of(r.text) == (
            f"user: 'ANNA' is not a whole address: did you mean {PLAIN} or anna@rival.example?"
        )
        assert users_read(steps.loop) == [] and 0 < steps.reader < STEPS


async def test_like_wildcards_typed_are_letters_and_no_name_has_none(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        for typed in ("a%", "ann_", "%", "_", "u0000_"):
            r = await c.get("/messages", params={"user": typed})
            assert error_of(r.text).endswith(f"give it in full, e.g. {typed}@acme.example"), typed
        r = await c.get("/messages", params={"user": "u00042"})
        assert error_of(r.text) == "user: 'u00042' is not a whole address: did you mean u00042@acme.example?"
