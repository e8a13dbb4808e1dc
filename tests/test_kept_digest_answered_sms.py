"""The mail of a phone's kept answers goes as the answers' own match saw their conversation: to the
user of the SMS they answer, quoting it, on its account; or to the fallback once that user is gone
(R-3.1, R-3.3, R-5.2).

The phone answers acme's SMS twice; the hourly limit of 1 keeps the second ("my PESEL is ...").
Before the phone has been quiet for an hour, the address is given to a successor or to another
company's user, who texts the same phone, or the user just texts it again. The mail of kept answers
judged by the conversation row as it is then: the predecessor's customer's answer reached the
successor; another company's move sent it to the fallback saying its conversation was no longer
kept, quoting nothing; and the same user had it threaded under, and quoting, the newer SMS.

A real daemon with its built-in SMSC simulator over SMPP, real SMTP in, a real relay sink out, the
daemon's own housekeeping mailing the kept answers on an injected clock, the SQLite file and the
billing file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.answer_world import POOL, WHY, world
from tests.conftest import STAFF
from tests.test_kept_answers import answer, states
from tests.test_leaver_new_holder import readd
from tests.test_own_numbers import FALLBACK

PESEL = "and my PESEL is 85010112345"
ONE_AN_HOUR = {"mails_per_phone_per_hour": 1}  # one answer a phone may have mailed an hour


@pytest.mark.parametrize("pool", [POOL, ""], ids=["pool", "no-pool"])
@pytest.mark.parametrize("change", ["other-company", "successor", "none"])
async def test_kept_answers_are_mailed_as_an_answer_to_the_sms_they_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: str, change: str
) -> None:
    async with world(tmp_path, monkeypatch, pool=pool, replies=ONE_AN_HOUR) as w:
        await w.texts("Invoice 77 is due", "Invoice 77", "<first@acme.example>")
        w.now[0] += 60
        await answer(w.gw, "paid, card ends 4242")
        w.now[0] += 60
        await answer(w.gw, PESEL)
        assert states(w.gw) == ["mailed", "throttled"]
        w.now[0] += 60
        if change != "none":
            await readd(w.gw, STAFF, "other" if change == "other-company" else "acme")
        await w.texts("New promo for you", "Promo", "<second@acme.example>")
        w.now[0] += 3700  # the phone quiet for an hour: its kept answer is mailed
        await w.gw.until(lambda: len(w.answers()) == 2)
        # The kept answer's mail, whichever the relay sink took first under load (the first answer's
        # mail may be the later one there): it, not the first answer's, carries the PESEL.
        (rcpts, msg), *_ = [(r, m) for r, m in w.answers() if "card ends 4242" not in m.get_content()]
        body = msg.get_content()
        assert PESEL in body and "Invoice 77 is due" in body and "New promo" not in body, body
        state, note, billed, _ = w.last_mo()
        assert billed == w.account_id("acme")  # the account whose SMS it answers
        assert w.billed() == {"acme": 2, "other": 0}
        if change == "none":
            assert rcpts == [STAFF] and state == "mailed"
            assert msg["In-Reply-To"] == "<first@acme.example>"  # the thread of the SMS it answers
            return
        assert rcpts == [FALLBACK], body  # never the address's new holder
        assert state == "fallback" and WHY[change] in note, note
