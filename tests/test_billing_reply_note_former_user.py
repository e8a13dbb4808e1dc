"""A company's billing file never says where a former user of theirs went (R-5.1, R-5.2).

An answer to acme's SMS, come after the address was given to another company's user, is billed to
acme, and with no fallback address it is recorded unmatched, its note saying why: "it answers
anna@acme.example, who belongs to another account since". That note went raw into the reason column
of acme's billing file, which is mailed to the company: it told acme that its former employee works
for another client of the gateway now. The company's file says the user is no longer a user of this
account (`inbound.told`, as the panel says it); the MO's own note, which the operator reads in `smsgw
mo list`, keeps the whole reason.

A real daemon with its built-in SMSC simulator over SMPP, real SMTP in, the SQLite file and the billing
files written from it, on an injected clock.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports.monthly import Month
from billing_reports.writer import write_month
from tests.conftest import STAFF, free_port, running_gateway, smtp_sink
from tests.test_answer_old_sms_held import mo_lines
from tests.test_kept_answers import answer, states
from tests.test_late_rest_holder import T0, texts
from tests.test_leaver_new_holder import readd
from tests.test_own_numbers import own_config


async def test_a_companys_billing_file_says_its_former_user_is_no_longer_its_user(tmp_path: Path) -> None:
    now = [T0]
    relay = free_port()
    cfg = own_config(tmp_path, "smpp", relay)
    cfg = cfg.model_copy(update={"replies": cfg.replies.model_copy(update={"fallback_address": None})})
    async with smtp_sink(relay), running_gateway(cfg, lambda: now[0]) as gw:
        await texts(gw, "Invoice 77 is due", "Invoice 77", "<first@acme.example>")
        now[0] += 60
        await readd(gw, STAFF, "other")
        await answer(gw, "paid")
        assert states(gw) == ["unmatched"]
        [(note,)] = gw.store.db.conn.execute("SELECT note FROM mo").fetchall()
        assert note == f"it answers {STAFF}, who belongs to another account since"  # the operator's
        tz = ZoneInfo(cfg.gateway.timezone)
        files = write_month(gw.store.path, tmp_path / "state", Month.containing(now[0], tz), tz)
    bills = {f.account: f.path.read_text() for f in files.accounts}
    [line] = [line for line in bills["acme"].splitlines() if line[:1].isdigit() and "\tMO-reply\t" in line]
    assert f"it answers {STAFF}, who is no longer a user of this account" in line, line
    assert "another account" not in bills["acme"]
    assert mo_lines(bills["other"]) == 0
