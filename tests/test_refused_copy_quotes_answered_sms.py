"""The copy of a refused answer to the fallback address quotes the SMS the phone answered, not the
user's newer SMS to the same phone (R-3, R-4).

The phone answers the user's SMS; its mail to the user waits at the company relay, which then refuses
it for good (`550 5.1.1 User unknown`), and a copy goes to `[replies] fallback_address`. Meanwhile
the user texted the same phone again. The copy was made from the conversation row as it was then,
which that newer mail had moved on: it quoted the newer SMS as the one "the user wrote" and the phone
answered. So did the copy of a refused mail of answers kept past the hourly limit. The MO records
the SMS it answers (migration 64) and the copies quote that one.

A real daemon with its built-in SMSC simulator over SMPP, real SMTP in, a real relay out that holds
the mail to the user at RCPT until the user has written again, then refuses it; the SQLite file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway.conversations.repo import ConversationsRepo
from tests.answer_world import World, world
from tests.conftest import STAFF
from tests.test_kept_answers import answer, states
from tests.test_own_numbers import FALLBACK
from tests.test_reply_refused import RefusingRelay

QUOTED = f"{STAFF} wrote to +48 601 222 222:\n> Invoice 77: Invoice 77 is due\n"


class HoldingRelay(RefusingRelay):
    """Refuses the addresses in `gone` (none at first), each only once `let_go` is set: until then
    the mail waits at RCPT (`holding` says one does), as a slow company relay keeps it."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = asyncio.Event()
        self.let_go = asyncio.Event()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.casefold() in self.gone:
            self.holding.set()
            await self.let_go.wait()
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


async def writes_again_then_refused(w: World, relay: HoldingRelay) -> None:
    """While the mail to the user waits at the relay, the user texts the same phone again (the
    conversation row moves on to that SMS); then the relay refuses the mail."""
    await asyncio.wait_for(relay.holding.wait(), 30)
    w.now[0] += 60
    await w.texts("New promo for you", "Promo", "<second@acme.example>")
    relay.let_go.set()


async def test_a_refused_answers_copy_quotes_the_sms_the_phone_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = HoldingRelay()
    relay.gone.add(STAFF.casefold())
    async with world(tmp_path, monkeypatch, relay=relay) as w:
        await w.texts("Invoice 77 is due", "Invoice 77", "<first@acme.example>")
        w.now[0] += 60
        await answer(w.gw, "paid, card ends 4242")
        await writes_again_then_refused(w, relay)
        await w.gw.until(lambda: len(w.answers()) == 1)
        [(rcpts, copy)] = w.answers()
        body = copy.get_content()
        assert rcpts == [FALLBACK] and relay.refused == [STAFF], body
        assert body.startswith("paid, card ends 4242\n")
        assert QUOTED in body and "New promo" not in body, body
        assert states(w.gw) == ["fallback"]
        # An MO settled before migration 64 recorded no SMS: its copy quotes the row, as before.
        db = w.gw.store.db
        await w.gw.store.write(lambda: db.conn.execute("UPDATE mo SET answered_message_id = NULL"))
        (mo_id,) = db.conn.execute("SELECT id FROM mo").fetchone()
        before = ConversationsRepo(db, w.gw.store.clock).answered_in(mo_id)
        assert before is not None and before.text == "Promo: New promo for you"


async def test_a_refused_mail_of_kept_answers_copy_quotes_the_sms_they_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = HoldingRelay()
    async with world(tmp_path, monkeypatch, relay=relay, replies={"mails_per_phone_per_hour": 1}) as w:
        await w.texts("Invoice 77 is due", "Invoice 77", "<first@acme.example>")
        w.now[0] += 60
        await answer(w.gw, "paid, card ends 4242")
        w.now[0] += 60
        await answer(w.gw, "and my PESEL is 85010112345")
        assert states(w.gw) == ["mailed", "throttled"]
        await w.gw.until(lambda: len(w.answers()) == 1)  # the first answer reached the user
        relay.gone.add(STAFF.casefold())  # the user's mailbox refuses mail from now on
        w.now[0] += 3700  # the phone quiet for an hour: its kept answer is mailed to the user
        await writes_again_then_refused(w, relay)
        await w.gw.until(lambda: len(w.answers()) == 2)
        rcpts, copy = w.answers()[1]
        body = copy.get_content()
        assert rcpts == [FALLBACK] and relay.refused == [STAFF], body
        assert "and my PESEL is 85010112345" in body
        assert QUOTED in body and "New promo" not in body, body
        assert states(w.gw) == ["mailed", "fallback"]
