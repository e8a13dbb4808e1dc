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

import pytest

from tests.answer_world import mo_lines, world
from tests.conftest import STAFF
from tests.test_kept_answers import answer, states
from tests.test_leaver_new_holder import readd


async def test_a_companys_billing_file_says_its_former_user_is_no_longer_its_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path, monkeypatch, replies={"fallback_address": None}) as w:
        await w.texts("Invoice 77 is due", "Invoice 77", "<first@acme.example>")
        w.now[0] += 60
        await readd(w.gw, STAFF, "other")
        await answer(w.gw, "paid")
        assert states(w.gw) == ["unmatched"]
        [(note,)] = w.gw.store.db.conn.execute("SELECT note FROM mo").fetchall()
        assert note == f"it answers {STAFF}, who belongs to another account since"  # the operator's
        bills = w.bills()
    [line] = [line for line in bills["acme"].splitlines() if line[:1].isdigit() and "\tMO-reply\t" in line]
    assert f"it answers {STAFF}, who is no longer a user of this account" in line, line
    assert "another account" not in bills["acme"]
    assert mo_lines(bills["other"]) == 0
