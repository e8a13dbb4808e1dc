"""A company admin's add reads the account's domains and the domain's holder on the panel's reader
thread. Both read through users (the holder through every user); on the daemon's own connection each
add held SMTP and the links 100-150 ms at 200,000 users. Counted in the loop's read steps, not in time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from gateway.web.app import WebContext
from tests.test_web_search_errors import error_of
from tests.web_helpers import ADMIN, as_user, csrf_of, panel_store, web_context

USERS = 3000  # more users in acme: a read through each of them is tens of thousands of steps
STEPS = 1000  # the add's own work on the loop's connection (the insert, its triggers, the audit)


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = panel_store(tmp_path)

    def many() -> None:
        store.db.conn.executemany(
            "INSERT INTO users (email, account_id, created_at)"
            " SELECT ?, id, 0 FROM accounts WHERE name = 'acme'",
            ((f"u{i:05d}@acme.example",) for i in range(USERS)),
        )

    await store.write(many)
    await store.write(lambda: store.accounts.add_user("first@shared.example", "rival"))  # the holder
    await store.write(lambda: store.accounts.add_user("later@shared.example", "acme"))
    web = web_context(tmp_path, store)
    yield web
    web.counts.close()
    store.close()


async def loop_steps(web: WebContext, request: Callable[[], Awaitable[httpx.Response]]) -> tuple[int, str]:
    """The request's virtual machine steps on the daemon's own connection, and its page."""
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    web.store.db.conn.set_progress_handler(step, 1)
    try:
        r = await request()
    finally:
        web.store.db.conn.set_progress_handler(None, 1)
    return steps[0], r.text


async def test_an_admins_add_reads_the_accounts_domains_off_the_loop(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)

        def add(email: str) -> Callable[[], Awaitable[httpx.Response]]:
            return lambda: c.post("/users", data={"csrf": token, "action": "add", "email": email})

        steps, _ = await loop_steps(web, add("newcomer@acme.example"))
        assert web.store.accounts.find_user("newcomer@acme.example") is not None
        assert steps < STEPS
        steps, page = await loop_steps(web, add("x@elsewhere.example"))  # not a domain of the account
        assert error_of(page).startswith("x@elsewhere.example is not at a domain of this account (")
        assert steps < STEPS
        steps, page = await loop_steps(web, add("x@shared.example"))  # acme has it, rival holds it
        assert error_of(page) == (
            "x@shared.example cannot be added: addresses at shared.example are added by another"
            " account's admin; ask the operator"
        )
        assert web.store.accounts.find_user("x@shared.example") is None and steps < STEPS
