"""The message search answers a mistake with what is wrong instead of "No messages.": a number that is
none, a range that ends before it starts, and a user given without the domain, whose hint names only
addresses of the admin's own account."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.web.app import WebContext
from tests.web_helpers import ADMIN, OPERATOR, OTHER_ADMIN, PLAIN, as_user, panel_store, web_context


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = panel_store(tmp_path)
    # The same name in the other company.
    await store.write(lambda: store.accounts.add_user("anna@rival.example", "rival"))
    web = web_context(tmp_path, store)
    yield web
    web.counts.close()
    store.close()


def mine(web: WebContext) -> int:
    return web.store.mine  # type: ignore[attr-defined,no-any-return]


def error_of(page: str) -> str:
    found = re.search(r'<p class="error"[^>]* id="error">([^<]*)</p>', page)
    assert found, page
    return found.group(1).replace("&#39;", "'")


async def test_a_number_that_is_no_number_is_said_so(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        r = await c.get("/messages", params={"number": "abc"})
        assert r.status_code == 400 and "No messages." not in r.text
        assert error_of(r.text).startswith("number: 'abc' is not a phone number")
        assert 'value="abc"' in r.text  # the form keeps what was typed, to be corrected
        ok = await c.get("/messages", params={"number": "601 000 001"})  # a number as people write it
        assert ok.status_code == 200 and f'href="/messages/{mine(web)}"' in ok.text


async def test_a_range_that_ends_before_it_starts_is_said_so(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        r = await c.get("/messages", params={"from": "2026-12-05", "to": "2026-12-01"})
        assert r.status_code == 400 and "No messages." not in r.text
        assert (
            error_of(r.text) == "to: 2026-12-01 is before from: 2026-12-05: the dates end before they start"
        )
        one_day = await c.get("/messages", params={"from": "2026-12-01", "to": "2026-12-01"})
        assert one_day.status_code == 200
        export = await c.get("/messages.csv", params={"from": "2026-12-05", "to": "2026-12-01"})
        assert export.status_code == 400  # not an empty file that passes for the answer


async def test_a_user_without_the_domain_is_pointed_to_the_own_accounts_address(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        r = await c.get("/messages", params={"user": "anna"})
        assert r.status_code == 400
        assert error_of(r.text) == f"user: 'anna' is not a whole address: did you mean {PLAIN}?"
        assert "anna@rival.example" not in r.text  # another company's user of the same name
        r = await c.get("/messages", params={"user": "jan"})
        assert (
            error_of(r.text) == "user: 'jan' is not a whole address: give it in full, e.g. jan@acme.example"
        )
        found = await c.get("/messages", params={"user": ADMIN.upper()})  # the whole address, any case
        assert found.status_code == 200 and f'href="/messages/{mine(web)}"' in found.text
    async with as_user(web, OTHER_ADMIN) as c:
        r = await c.get("/messages", params={"user": "anna"})
        assert error_of(r.text) == "user: 'anna' is not a whole address: did you mean anna@rival.example?"
        assert PLAIN not in r.text
    async with as_user(web, OPERATOR) as c:  # every account's, for the operator
        r = await c.get("/messages", params={"user": "anna"})
        assert error_of(r.text) == (
            f"user: 'anna' is not a whole address: did you mean {PLAIN} or anna@rival.example?"
        )
