# ruff: noqa: F811  (the panel's test takes test_web_admin_day's `web` fixture, imported by name)
"""A sender name with digits and dashes ("2026-12", a date) is a name, not a mistyped number.

Any text of digits and dashes with five digits counted as a phone number written with dashes: the
CLI (`account set --sender 2026-12`) and the panel stored the number 202612, and every SMS of the
account went out from it; the config refused the same name as "looks like a number". A number as
people write one, with its country code or area code, or with a national number's digits, is still
taken in digits (`test_sender_typed_spaced.py`, the panel's "spaced sender" test). The CLI as a real
process on a real SQLite file, the panel through the real app.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.senderrules import sender_problem, typed_number
from gateway.web.app import WebContext
from tests.conftest import config_text
from tests.test_process import smsgw
from tests.test_web_admin_day import SETTINGS, web  # noqa: F401  (the fixture)
from tests.web_helpers import OPERATOR, as_user, csrf_of

NAMES = ["2026-12", "2026-12-31", "31.12.2026", "1.5.2026", "12-345", "24-7 365"]


@pytest.mark.parametrize("name", NAMES)
def test_a_date_or_a_short_dashed_name_stays_a_name(name: str) -> None:
    assert typed_number(name) == name
    assert sender_problem(name) is None


@pytest.mark.parametrize(
    ("written", "plain"),
    [
        ("+48 601-123-456", "+48601123456"),
        ("(22) 123-45-67", "221234567"),
        ("601-123-456", "601123456"),
        ("22 123 45 67", "221234567"),
        ("+48 100-200", "+48100200"),
    ],
)
def test_a_phone_number_as_written_is_still_taken_in_digits(written: str, plain: str) -> None:
    assert typed_number(written) == plain


def test_the_cli_keeps_a_dashed_name_and_takes_a_dashed_number(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    added = smsgw(config, "account", "add", "ACME", "--sender", "2026-12")
    assert added.returncode == 0, added.stderr
    assert smsgw(config, "account", "add", "BETA", "--sender", "+48 601-123-456").returncode == 0
    acme = smsgw(config, "account", "show", "ACME").stdout
    assert "2026-12" in acme and "202612" not in acme, acme
    assert "+48601123456" in smsgw(config, "account", "show", "BETA").stdout
    dated = smsgw(config, "account", "set", "ACME", "--sender", "2026-12-31")
    assert dated.returncode == 0, dated.stderr
    acme = smsgw(config, "account", "show", "ACME").stdout
    assert "2026-12-31" in acme and "20261231" not in acme, acme


async def test_the_panel_keeps_a_dashed_name(web: WebContext) -> None:
    accounts = web.store.accounts
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/operator/accounts")).text)
        data = {"csrf": token, "action": "add", "name": "lodz", "sender": "2026-12"}
        r = await c.post("/operator/accounts", data=data)
        assert r.status_code == 303, r.text
        page = (await c.get("/account", params={"account": "rival"})).text
        data = {**SETTINGS, "csrf": csrf_of(page), "sender": "2026-12-31"}
        r = await c.post("/account", params={"account": "rival"}, data=data, follow_redirects=True)
        assert r.status_code == 200 and "account rival updated" in r.text, r.text
    assert accounts.get_account("lodz").sender == "2026-12"
    assert accounts.get_account("rival").sender == "2026-12-31"
