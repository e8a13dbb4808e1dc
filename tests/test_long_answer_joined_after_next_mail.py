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
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway import housekeeping as housekeeping_module
from gateway.reassembly import TIMEOUT_SECONDS
from smsc.simulator.smpp_texts import address_fields, mo_parts
from tests.conftest import STAFF, free_port, running_gateway, smtp_sink
from tests.test_answer_old_sms_held import POOL, mo_lines
from tests.test_late_rest_holder import T0, TEXT, account_id, answers, segments, texts
from tests.test_leaver_new_holder import readd
from tests.test_own_numbers import FALLBACK, OURS, PHONE, own_config

WHY = {
    "other-company": f"it answers {STAFF}, who belongs to another account since",
    "successor": f"it answers an SMS {STAFF} sent before the address was added again as a user",
}


async def part(gw: Any, seq: int, ours: str) -> None:
    """Part `seq` of the phone's 2-part answer to `ours`, as the SMSC delivers it."""
    core = gw.daemon.simulator.core
    await gw.until(lambda: core._pick("smpp") is not None)
    session = core._pick("smpp")
    esm, dc, sm = mo_parts(TEXT, ref=0x31, parts=2)[seq - 1]
    fields = dict(address_fields(PHONE, ours), esm_class=esm, data_coding=dc, short_message=sm)
    await session.send_part(tuple(fields.items()))


@pytest.mark.parametrize("pool", [POOL, ""], ids=["pool", "no-pool"])
@pytest.mark.parametrize("change", ["other-company", "successor", "none"])
async def test_a_long_answer_joined_after_the_users_next_sms_answers_the_sms_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: str, change: str
) -> None:
    monkeypatch.setattr(housekeeping_module, "EXPIRY_INTERVAL", 0.05)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    relay = free_port()
    cfg = own_config(tmp_path, "smpp", relay, pool=pool)
    ours = "+48500100200" if pool else OURS  # the pool's first number, or the default sender
    async with smtp_sink(relay) as sink, running_gateway(cfg, lambda: now[0]) as gw:
        await texts(gw, "Umowa 77 do podpisu", "Umowa 77", "<first@acme.example>")
        now[0] += 60
        await part(gw, 1, ours)  # the phone answers the first SMS; its second part never comes
        await gw.until(lambda: segments(gw) == 1)
        now[0] += 60
        if change != "none":
            await readd(gw, STAFF, "other" if change == "other-company" else "acme")
        await texts(gw, "Demo hello", "Demo", "<second@acme.example>")  # sent after the phone answered
        now[0] += TIMEOUT_SECONDS + 1  # then the timeout joins the answer
        await gw.until(lambda: len(answers(sink)) == 1)
        [(rcpts, msg)] = answers(sink)
        body = msg.get_content()
        assert "Umowa 77 do podpisu" in body and "Demo hello" not in body, body
        state, note, billed = gw.store.db.conn.execute(
            "SELECT state, note, account_id FROM mo WHERE state NOT IN ('segment', 'joined')"
        ).fetchone()
        assert billed == account_id(gw, "acme")  # the account whose SMS it answers
        tz = ZoneInfo(cfg.gateway.timezone)
        files = write_month(gw.store.path, tmp_path / "state", Month.containing(now[0], tz), tz)
        assert {f.account: mo_lines(f.path.read_text()) for f in files.accounts} == {"acme": 1, "other": 0}
        if change == "none":
            assert rcpts == [STAFF] and state == "mailed"
            assert msg["In-Reply-To"] == "<first@acme.example>"  # the first SMS's thread
            return
        assert rcpts == [FALLBACK], body
        assert state == "fallback" and note.startswith(WHY[change]), note
