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
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway import housekeeping as housekeeping_module
from tests.conftest import STAFF, free_port, running_gateway, smtp_sink
from tests.test_answer_old_sms_held import POOL, mo_lines
from tests.test_kept_answers import answer, states
from tests.test_late_rest_holder import T0, account_id, answers, texts
from tests.test_leaver_new_holder import readd
from tests.test_long_answer_joined_after_next_mail import WHY
from tests.test_own_numbers import FALLBACK, own_config

PESEL = "and my PESEL is 85010112345"


def one_an_hour(cfg: Any) -> Any:
    """The config with one answer a phone may have mailed an hour: the next ones are kept."""
    return cfg.model_copy(update={"replies": cfg.replies.model_copy(update={"mails_per_phone_per_hour": 1})})


@pytest.mark.parametrize("pool", [POOL, ""], ids=["pool", "no-pool"])
@pytest.mark.parametrize("change", ["other-company", "successor", "none"])
async def test_kept_answers_are_mailed_as_an_answer_to_the_sms_they_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: str, change: str
) -> None:
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    relay = free_port()
    cfg = one_an_hour(own_config(tmp_path, "smpp", relay, pool=pool))
    async with smtp_sink(relay) as sink, running_gateway(cfg, lambda: now[0]) as gw:
        await texts(gw, "Invoice 77 is due", "Invoice 77", "<first@acme.example>")
        now[0] += 60
        await answer(gw, "paid, card ends 4242")
        now[0] += 60
        await answer(gw, PESEL)
        assert states(gw) == ["mailed", "throttled"]
        now[0] += 60
        if change != "none":
            await readd(gw, STAFF, "other" if change == "other-company" else "acme")
        await texts(gw, "New promo for you", "Promo", "<second@acme.example>")
        now[0] += 3700  # the phone quiet for an hour: its kept answer is mailed
        await gw.until(lambda: len(answers(sink)) == 2)
        rcpts, msg = answers(sink)[1]
        body = msg.get_content()
        assert PESEL in body and "Invoice 77 is due" in body and "New promo" not in body, body
        state, note, billed = gw.store.db.conn.execute(
            "SELECT state, note, account_id FROM mo ORDER BY id DESC LIMIT 1"
        ).fetchone()
        assert billed == account_id(gw, "acme")  # the account whose SMS it answers
        tz = ZoneInfo(cfg.gateway.timezone)
        files = write_month(gw.store.path, tmp_path / "state", Month.containing(now[0], tz), tz)
        assert {f.account: mo_lines(f.path.read_text()) for f in files.accounts} == {"acme": 2, "other": 0}
        if change == "none":
            assert rcpts == [STAFF] and state == "mailed"
            assert msg["In-Reply-To"] == "<first@acme.example>"  # the thread of the SMS it answers
            return
        assert rcpts == [FALLBACK], body  # never the address's new holder
        assert state == "fallback" and WHY[change] in note, note
