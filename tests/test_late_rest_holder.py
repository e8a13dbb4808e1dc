"""The late rest of a long answer follows its first parts: their thread, their account, or the fallback
once that account's user is gone (R-3.1, R-3.3, R-3.4, R-5.2).

The phone sends part 1 of 2; the timeout mails it to the user who texted the phone. The user texts
the phone again (moved to another company's account, or the address given to a successor, or not at
all changed), then part 2 comes. It was found by the conversation row as it is now: threaded under
and quoting the newer SMS, billed to the new account, mailed to another company's user or the
successor. It goes on in the first parts' thread, quoting what they answered, on their account;
or to the fallback address when their user is gone.

A real daemon with its built-in SMSC simulator over SMPP, real SMTP in, a real relay sink out, the
daemon's own housekeeping joining the parts on an injected clock, the SQLite file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.reassembly import TIMEOUT_SECONDS
from tests.answer_world import WHY, world
from tests.conftest import STAFF
from tests.test_leaver_new_holder import readd
from tests.test_own_numbers import FALLBACK


@pytest.mark.parametrize("change", ["other-company", "successor", "none"])
async def test_the_late_rest_follows_its_first_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    async with world(tmp_path, monkeypatch) as w:
        await w.texts("Umowa 77 do podpisu", "Umowa 77", "<first@acme.example>")
        w.now[0] += 60
        await w.part(1, ref=0x22)
        await w.gw.until(lambda: w.segments() == 1)
        w.now[0] += TIMEOUT_SECONDS + 1
        await w.gw.until(lambda: len(w.answers()) == 1)
        [(rcpts, first)] = w.answers()
        assert rcpts == [STAFF] and first["In-Reply-To"] == "<first@acme.example>"

        w.now[0] += 60
        if change != "none":
            await readd(w.gw, STAFF, "other" if change == "other-company" else "acme")
        await w.texts("Demo hello", "Demo", "<second@acme.example>")
        w.now[0] += 60
        await w.part(2, ref=0x22)
        await w.gw.until(lambda: w.segments() == 1)
        w.now[0] += TIMEOUT_SECONDS + 1
        await w.gw.until(lambda: len(w.answers()) == 2)
        rcpts, late = w.answers()[1]
        body = late.get_content()
        assert "podpisze jutro rano" in body and "Demo hello" not in body, body
        state, note, billed, _ = w.last_mo()
        assert billed == w.account_id("acme")  # the first parts' account, whoever holds the address
        if change == "none":
            assert rcpts == [STAFF]
            assert late["In-Reply-To"] == "<first@acme.example>"  # the first parts' thread
            assert "Umowa 77 do podpisu" in body
            assert state == "mailed"
            return
        assert rcpts == [FALLBACK], body
        assert state == "fallback"
        assert note.startswith(WHY[change]), note
