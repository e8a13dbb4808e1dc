"""A billing file opened in a spreadsheet runs nothing: a field from outside that starts like a
formula is kept as text, as the panel's CSV export keeps it; phone numbers and amounts stay numbers."""

from __future__ import annotations

from pathlib import Path

from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway.mailheaders import is_plain_address
from gateway.store.db import Store
from tests.billing_reader import read
from tests.billing_world import TZ, at, prepare
from tests.conftest import free_port

EVIL = "=cmd|'/Ccalc'!A0@acme.pl"  # an address the ACL takes: its local part may hold these


def test_a_user_named_like_a_formula_is_text_in_the_billing_file(tmp_path: Path) -> None:
    assert is_plain_address(EVIL)
    _, cfg = prepare(tmp_path, free_port(), last_billed="2026-02", traffic={"acme": [at(2026, 3, 2, 9)]})
    store = Store.open(cfg.db_path, clock=lambda: at(2026, 4, 2, 9))
    try:
        user = store.accounts.add_user(EVIL, "acme")
        store.db.conn.execute("UPDATE emails SET user_id = ?, mail_from = ?", (user.id, EVIL))
        store.db.conn.execute("UPDATE messages SET reason = '@SUM(1+1)*cmd', state = 'failed'")
    finally:
        store.close()
    files = write_month(cfg.db_path, cfg.state_dir, Month(2026, 3), TZ, billing_dir=cfg.billing_dir)
    [f] = files.accounts
    billing = read(f.path.read_bytes())  # its end line still counts and hashes every byte
    [line] = billing.sms
    assert line["user_or_phone"] == "'" + EVIL
    assert line["reason"] == "'@SUM(1+1)*cmd"
    assert (line["from"], line["to"]) == ("+48100200300", "+48601000000")  # numbers, as they were
    assert ("user", "'" + EVIL) in billing.totals
    assert billing.totals[("all", "-")]["sms"] == "1"  # an empty key stays `-`
