"""A company admin sees the SMS phones answered their users with, on the Conversations page, and no
other company's: not an answer matched to another account, nor one on a reply-pool number two
companies shared, nor one matched to nobody (the operator's). MOs go through the daemon's own
handling (`GatewayEvents.on_deliver`); the pages through the real app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway import conversations
from gateway.events import GatewayEvents, Notifier
from gateway.store.db import Store
from gateway.store.records import Acceptance, NewMessage, NewPart
from gateway.web.app import WebContext
from smsc.base import Ack, InboundSms
from tests.web_helpers import ADMIN, OPERATOR, OTHER_ADMIN, PLAIN, as_user, seeded_store, web_context

POOL = "+48500100200"  # one reply number: a second company's SMS to the same phone shares it
REPLIES = f'[replies]\npool = ["{POOL}"]\nfallback_address = "ops@gw.example"\n'
CARL = "carl@rival.example"
PHONE_ACME, PHONE_RIVAL, PHONE_SHARED, PHONE_STRAY = (
    "+48601000011",
    "+48602000022",
    "+48603000033",
    "+48604000044",
)


def send(web: WebContext, user: str, phone: str) -> None:
    """An accepted SMS from `user` to `phone`, as intake writes it: it opens the conversation."""
    store, cfg = web.store, web.config
    account = store.accounts.find_user(user).account_id  # type: ignore[union-attr]
    text = f"hello from {user}"
    msg = NewMessage(phone, "+48100200300", text, 0, [NewPart(1, 0, text.encode(), b"", text)])
    acc = Acceptance(user, "127.0.0.1", account, None, f"<{phone}.{user}>", None, "Hi", text, [msg], 3600)
    opening = conversations.opening(
        cfg, user_email=user, account_id=account, sender="+48100200300", domains={phone: "sms.example.com"}
    )
    assert opening is not None
    conversations.on_accept(store, opening, acc)
    store.queue.insert_email(acc)


async def answer(events: GatewayEvents, store: Store, phone: str, text: str) -> None:
    sms = InboundSms(source=phone, destination=POOL, text=text)
    assert await events.on_deliver("main", sms) is Ack.OK
    events.on_acked("main", sms, True)
    await store.drain()


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = seeded_store(tmp_path)
    web = web_context(tmp_path, store, REPLIES)
    events = GatewayEvents(store, Notifier(store, web.config))
    send(web, PLAIN, PHONE_ACME)
    send(web, CARL, PHONE_RIVAL)
    send(web, PLAIN, PHONE_SHARED)  # the pool's one number, to the same phone, for two companies
    send(web, CARL, PHONE_SHARED)
    await answer(events, store, PHONE_ACME, "acme answer one")
    await answer(events, store, PHONE_ACME, "acme answer two")
    await answer(events, store, PHONE_RIVAL, "rival answer")
    await answer(events, store, PHONE_SHARED, "shared pool answer")
    await answer(events, store, PHONE_STRAY, "stray answer")
    # The relay took the answer mails (no outbox worker here): queued, the page says so instead.
    await store.write(lambda: store.db.conn.execute("UPDATE outbox SET state = 'sent'"))
    store.db.serve()
    yield web
    web.counts.close()
    store.close()


def answers_table(page: str) -> str:
    found = re.search(r'<table id="answers">.*?</table>', page, re.S)
    assert found, page
    return found.group(0)


async def test_a_company_admin_sees_their_users_answers_newest_first(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/conversations")).text
    table = answers_table(page)
    assert table.index("acme answer two") < table.index("acme answer one")  # newest first
    assert table.count(f"mailed to {PLAIN}") == 2
    assert PHONE_ACME in table and POOL in table
    for theirs in ("rival answer", "shared pool answer", "stray answer", PHONE_RIVAL, CARL, PHONE_STRAY):
        assert theirs not in page, theirs
    assert 'id="mo"' not in page  # the operator's table of every MO stays the operator's


async def test_the_other_company_sees_its_own_answer_only(web: WebContext) -> None:
    async with as_user(web, OTHER_ADMIN) as c:
        table = answers_table((await c.get("/conversations")).text)
    assert "rival answer" in table and f"mailed to {CARL}" in table
    for theirs in ("acme answer", "shared pool answer", "stray answer", PLAIN):
        assert theirs not in table, theirs


async def test_an_answer_whose_mail_was_refused_says_where_it_went(web: WebContext) -> None:
    conn = web.store.db.conn
    (mo_id,) = conn.execute("SELECT id FROM mo WHERE text = 'acme answer one'").fetchone()
    said = "the mail to anna was refused; sent to the fallback"
    await web.store.write(lambda: web.store.mo.answer_refused(mo_id, "fallback", said))
    async with as_user(web, ADMIN) as c:
        table = answers_table((await c.get("/conversations")).text)
    assert f"fallback (answering {PLAIN}): {said}" in table


async def test_the_operator_still_sees_every_answer_and_no_answers_table(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/conversations")).text
    for phone in (PHONE_ACME, PHONE_RIVAL, PHONE_SHARED, PHONE_STRAY):
        assert phone in page, phone
    assert 'id="answers"' not in page
