"""A pool number two companies share stays shared when the newest holder's user is removed or moved
(R-3.2, R-3.3, R-5.2).

The pool ran out: acme's user and then the other company's user texted the phone from its one number,
and its answers go to the fallback address, billed to neither company. Once the other company's user
was removed (or moved to acme), the sharing was no longer looked at: the answer went to the fallback as
"it answers bob@…, who is no longer a user", on the other company's account, listed among its answers
in its panel with its text and billed to it, though the phone may have been answering acme.

A real daemon with its built-in SMSC simulator over SMPP, real SMTP in, a real relay sink out, the
SQLite file, an injected clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.answer_world import world
from tests.conftest import STAFF
from tests.test_answer_displaced_other_window import answered, texted
from tests.test_own_numbers import FALLBACK
from tests.test_two_way import BOB

SHARED = "the reply pool ran out"


@pytest.mark.parametrize("gone", ["removed", "moved"])
async def test_a_shared_numbers_answer_is_billed_to_neither_once_its_newest_user_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gone: str
) -> None:
    async with world(tmp_path, monkeypatch, pool='"+48500100200"') as w:
        store = w.gw.store
        await texted(w, STAFF, "Acme: may we call you?")
        w.now[0] += 60
        await texted(w, BOB, "Other: renew the contract?")  # the pool's one number: shared
        w.now[0] += 60
        rcpts, _ = await answered(w, "Tak", 1)
        state, note, billed, _ = w.last_mo()
        assert (rcpts, state, billed) == ([FALLBACK], "fallback", None) and SHARED in note, note

        def leave() -> None:
            store.accounts.remove_user(BOB)
            if gone == "moved":
                store.accounts.add_user(BOB, "acme")

        await store.write(leave)
        w.now[0] += 60
        rcpts, body = await answered(w, "Tak, prosze dzwonic", 2)
        assert rcpts == [FALLBACK], body
        state, note, billed, _ = w.last_mo()
        assert state == "fallback" and SHARED in note, note
        assert billed is None  # either company's answer: not the other company's traffic
