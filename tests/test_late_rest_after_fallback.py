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
from zoneinfo import ZoneInfo

import pytest

from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway import housekeeping as housekeeping_module
from gateway.reassembly import TIMEOUT_SECONDS
from tests.conftest import STAFF, free_port, running_gateway, smtp_sink
from tests.test_answer_old_sms_held import POOL, mo_lines
from tests.test_late_rest_holder import T0, account_id, answers, segments, texts
from tests.test_leaver_new_holder import readd
from tests.test_long_answer_joined_after_next_mail import WHY, part
from tests.test_own_numbers import FALLBACK, OURS, own_config


@pytest.mark.parametrize("pool", [POOL, ""], ids=["pool", "no-pool"])
@pytest.mark.parametrize("change", ["other-company", "successor"])
async def test_the_late_rest_of_an_answer_mailed_to_the_fallback_goes_to_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: str, change: str
) -> None:
    monkeypatch.setattr(housekeeping_module, "EXPIRY_INTERVAL", 0.05)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    relay = free_port()
    cfg = own_config(tmp_path, "smpp", relay, pool=pool)
    ours = "+48500100200" if pool else OURS
    async with smtp_sink(relay) as sink, running_gateway(cfg, lambda: now[0]) as gw:
        await texts(gw, "Umowa 77 do podpisu", "Umowa 77", "<first@acme.example>")
        now[0] += 60
        await readd(gw, STAFF, "other" if change == "other-company" else "acme")
        await part(gw, 1, ours)
        await gw.until(lambda: segments(gw) == 1)
        now[0] += TIMEOUT_SECONDS + 1
        await gw.until(lambda: len(answers(sink)) == 1)
        assert answers(sink)[0][0] == [FALLBACK]  # its user is gone: the first parts to the fallback

        now[0] += 60
        await texts(gw, "Demo hello", "Demo", "<second@acme.example>")  # the new holder texts the phone
        now[0] += 60
        await part(gw, 2, ours)
        await gw.until(lambda: segments(gw) == 1)
        now[0] += TIMEOUT_SECONDS + 1
        await gw.until(lambda: len(answers(sink)) == 2)
        rcpts, late = answers(sink)[1]
        body = late.get_content()
        assert rcpts == [FALLBACK], body
        assert "podpisze jutro rano" in body and "came late" in body
        assert "Umowa 77 do podpisu" in body and "Demo hello" not in body, body
        state, note, billed, follows = gw.store.db.conn.execute(
            "SELECT state, note, account_id, follows FROM mo ORDER BY id DESC LIMIT 1"
        ).fetchone()
        assert follows is not None and state == "fallback" and note.startswith(WHY[change]), note
        assert billed == account_id(gw, "acme")  # the account whose SMS it answers, as its first parts
        tz = ZoneInfo(cfg.gateway.timezone)
        files = write_month(gw.store.path, tmp_path / "state", Month.containing(now[0], tz), tz)
        assert {f.account: mo_lines(f.path.read_text()) for f in files.accounts} == {"acme": 2, "other": 0}
