"""A company admin's dashboard and recorded mail show their own account's and nothing of another's:
the counts of today, the SMS held for quiet hours and the mail recorded but not sent each come from a
query of their own, and each had its account filter unguarded by any test (a query losing it showed
acme's admin rival's traffic, numbers and senders).

The panel is the app over a real SQLite store with two accounts and their admins (tests.web_helpers),
logged into over HTTP as each admin in turn."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store.db import Store
from gateway.web.app import WebContext
from tests.web_helpers import ADMIN, OTHER_ADMIN, add_mail, as_user, seeded_store, web_context

RIVAL_SENDER = "bounce-rival@rival.example"
ACME_SENDER = "ooo-acme@acme.example"


def recorded(store: Store, account: str, sender: str, subject: str) -> None:
    """A mail recorded and not sent (an out-of-office reply), as intake writes its `emails` row."""
    acc = store.accounts.get_account(account)
    with store.db.transaction():
        store.db.conn.execute(
            "INSERT INTO emails (account_id, mail_from, text, received_at, subject, client_ip, automatic)"
            " VALUES (?, ?, '', ?, ?, '127.0.0.9', 'out-of-office reply')",
            (acc.id, sender, store.clock(), subject),
        )


def hold_for_quiet_hours(store: Store, message_id: int) -> None:
    """The message's parts wait, never tried, until after now: what quiet hours make of a bulk SMS
    (under an account that has quiet hours: any other's part due later was not held by them)."""
    with store.db.transaction():
        store.db.conn.execute(
            "UPDATE parts SET next_attempt_at = ? WHERE message_id = ?",
            (store.clock() + 6 * 3600, message_id),
        )
        store.db.conn.execute(
            "UPDATE accounts SET quiet_start = '22:00', quiet_end = '07:00'"
            " WHERE id = (SELECT account_id FROM messages WHERE id = ?)",
            (message_id,),
        )


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    """acme: one SMS sent today and an auto-reply recorded; rival: three SMS today, one of them held
    for quiet hours to a number of its own, and a recorded mail of its own."""
    store = seeded_store(tmp_path)
    add_mail(store, "acme", ADMIN, "+48601000001", "acme text")
    for n in range(3):
        theirs = add_mail(store, "rival", OTHER_ADMIN, f"+4860200000{n}", "rival secret text")
    hold_for_quiet_hours(store, theirs)
    recorded(store, "acme", ACME_SENDER, "Automatic reply: acme away")
    recorded(store, "rival", RIVAL_SENDER, "Automatic reply: rival away")
    store.db.serve()
    web = web_context(tmp_path, store)
    web.rival_held = theirs  # type: ignore[attr-defined]
    yield web
    web.counts.close()
    store.close()


def today(page: str) -> dict[str, int]:
    section = page.split('id="today"', 1)[1].split("</ul>", 1)[0]
    return {state: int(n) for n, state in re.findall(r"<b>(\d+)</b> (\w+)</li>", section)}


async def test_an_admins_recorded_mail_is_their_accounts_alone(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        mine = (await c.get("/messages/recorded")).text
    async with as_user(web, OTHER_ADMIN) as c:
        theirs = (await c.get("/messages/recorded")).text
    assert ACME_SENDER in mine and "acme away" in mine
    assert RIVAL_SENDER not in mine and "rival away" not in mine
    assert RIVAL_SENDER in theirs and ACME_SENDER not in theirs


async def test_an_admins_dashboard_counts_today_their_accounts_messages_alone(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        mine = (await c.get("/")).text
    async with as_user(web, OTHER_ADMIN) as c:
        theirs = (await c.get("/")).text
    assert today(mine) == {"queued": 1}
    assert today(theirs) == {"queued": 3}


async def test_an_admins_dashboard_lists_their_accounts_quiet_hours_held_sms_alone(web: WebContext) -> None:
    held = web.rival_held  # type: ignore[attr-defined]
    async with as_user(web, OTHER_ADMIN) as c:
        theirs = (await c.get("/")).text
    async with as_user(web, ADMIN) as c:
        mine = (await c.get("/")).text
    # rival's admin sees it waiting (the test's own check that the message is held at all) ...
    assert f'<a href="/messages/{held}">' in theirs and "+48602000002" in theirs
    # ... acme's admin has nothing needing attention, and no rival number or message link.
    attention = mine.split('id="attention-heading"', 1)[1]
    assert f"/messages/{held}" not in attention and "+4860200000" not in mine
    assert "<p>Nothing.</p>" in attention
