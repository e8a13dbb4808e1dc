"""A long answer joined after its user's next SMS went answers the SMS the phone had when it sent its
first part, not that next one (R-3.1, R-3.3, R-5.2).

A long answer is matched as of its first part, but only once joined: by the timeout (5 minutes with
the default), after a restart a timeout after the start. The user's next mail, accepted and sent in
between, moved the conversation row past the answer, and the match then read the phone's SMS with no
upper bound as if the clock had stepped back: it took the SMS sent after the phone answered. The
answer to acme's SMS went to the user's new company, billed to it, or to the address's successor;
and one of a user who had not changed quoted an SMS the phone had not received when it answered.

A real daemon with its built-in SMSC simulator over SMPP, real SMTP in, a real relay sink out, the
daemon's own housekeeping joining the parts on an injected clock, the SQLite file and the billing file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.reassembly import TIMEOUT_SECONDS
from tests.answer_world import POOL, WHY, world
from tests.conftest import STAFF
from tests.test_leaver_new_holder import readd
from tests.test_own_numbers import FALLBACK


@pytest.mark.parametrize("pool", [POOL, ""], ids=["pool", "no-pool"])
@pytest.mark.parametrize("change", ["other-company", "successor", "none"])
async def test_a_long_answer_joined_after_the_users_next_sms_answers_the_sms_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: str, change: str
) -> None:
    async with world(tmp_path, monkeypatch, pool=pool) as w:
        await w.texts("Umowa 77 do podpisu", "Umowa 77", "<first@acme.example>")
        w.now[0] += 60
        await w.part(1)  # the phone answers the first SMS; its second part never comes
        await w.gw.until(lambda: w.segments() == 1)
        w.now[0] += 60
        if change != "none":
            await readd(w.gw, STAFF, "other" if change == "other-company" else "acme")
        await w.texts("Demo hello", "Demo", "<second@acme.example>")  # sent after the phone answered
        w.now[0] += TIMEOUT_SECONDS + 1  # then the timeout joins the answer
        await w.gw.until(lambda: len(w.answers()) == 1)
        [(rcpts, msg)] = w.answers()
        body = msg.get_content()
        assert "Umowa 77 do podpisu" in body and "Demo hello" not in body, body
        state, note, billed, _ = w.last_mo()
        assert billed == w.account_id("acme")  # the account whose SMS it answers
        assert w.billed() == {"acme": 1, "other": 0}
        if change == "none":
            assert rcpts == [STAFF] and state == "mailed"
            assert msg["In-Reply-To"] == "<first@acme.example>"  # the first SMS's thread
            return
        assert rcpts == [FALLBACK], body
        assert state == "fallback" and note.startswith(WHY[change]), note
