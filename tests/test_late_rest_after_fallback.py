"""The late rest of a long answer whose first parts went to the fallback address goes there too, not to
whoever texted the phone since (R-3.3, R-3.4, R-5.2).

The phone answers acme's SMS in two parts; before the first is joined, the address is given to
another company's user or to a successor, so the first parts go to the fallback, billed to acme.
The new holder then texts the phone, and the second part comes. Only a late rest whose first parts
reached a user followed them; this one was matched as a fresh answer at its own time: mailed to the
new holder, quoting their SMS, billed to their account. It is matched as its first parts were, as of
when they came: to the fallback, quoting acme's SMS, on acme's bill.

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
@pytest.mark.parametrize("change", ["other-company", "successor"])
async def test_the_late_rest_of_an_answer_mailed_to_the_fallback_goes_to_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: str, change: str
) -> None:
    async with world(tmp_path, monkeypatch, pool=pool) as w:
        await w.texts("Umowa 77 do podpisu", "Umowa 77", "<first@acme.example>")
        w.now[0] += 60
        await readd(w.gw, STAFF, "other" if change == "other-company" else "acme")
        await w.part(1)
        await w.gw.until(lambda: w.segments() == 1)
        w.now[0] += TIMEOUT_SECONDS + 1
        await w.gw.until(lambda: len(w.answers()) == 1)
        assert w.answers()[0][0] == [FALLBACK]  # its user is gone: the first parts to the fallback

        w.now[0] += 60
        await w.texts("Demo hello", "Demo", "<second@acme.example>")  # the new holder texts the phone
        w.now[0] += 60
        await w.part(2)
        await w.gw.until(lambda: w.segments() == 1)
        w.now[0] += TIMEOUT_SECONDS + 1
        await w.gw.until(lambda: len(w.answers()) == 2)
        rcpts, late = w.answers()[1]
        body = late.get_content()
        assert rcpts == [FALLBACK], body
        assert "podpisze jutro rano" in body and "came late" in body
        assert "Umowa 77 do podpisu" in body and "Demo hello" not in body, body
        state, note, billed, follows = w.last_mo()
        assert follows is not None and state == "fallback" and note.startswith(WHY[change]), note
        assert billed == w.account_id("acme")  # the account whose SMS it answers, as its first parts
        assert w.billed() == {"acme": 2, "other": 0}
