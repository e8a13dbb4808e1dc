"""Numbers written in the national form beside a CIMD2 `sender_prefix`, and `account set --sender`.

`sender_prefix = "500100"` or an account sender 500100201 (the national form of +48500100201) got
"set sender_prefix to the start those numbers share": the fault is the form, as the link compares
numbers after a "+" or "00" only, and the admin was not told to write +48…. `account set --sender
500100201` stored the national digits as typed. check-config and the CLI as real processes.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_check_config_sender_prefix import cimd2_config, warned, with_database, write
from tests.test_config_checks import smsgw


def test_a_national_prefix_and_a_national_sender_are_told_to_be_written_with_the_country_code(
    tmp_path: Path,
) -> None:
    [line] = warned(tmp_path, cimd2_config(tmp_path, "500100"))
    said = '"500100" is written in the national form, and numbers are compared in the international form:'
    assert f'{said} write it "+48500100"' in line, line
    assert "the start those numbers share" not in line, line

    account = '\n[[account]]\nname = "shop"\nsender = "500100201"\n'
    [line] = warned(tmp_path, cimd2_config(tmp_path, "+48500100", extra=account))
    assert '[[account]] "shop" sender is written in the national form: write it with + and the' in line
    assert "country code (+48…)" in line, line


def test_account_set_takes_a_national_sender_in_its_international_form(tmp_path: Path) -> None:
    config = with_database(write(tmp_path, cimd2_config(tmp_path, "+48500100")))
    assert smsgw("--config", str(config), "account", "add", "ACME").returncode == 0
    res = smsgw("--config", str(config), "account", "set", "ACME", "--sender", "500100201")
    assert res.returncode == 0, res.stderr
    said = "note: --sender 500100201 is taken as +48500100201, its international form ([gateway]"
    assert said in res.stdout, res.stdout
    shown = smsgw("--config", str(config), "account", "show", "ACME").stdout
    assert "+48500100201" in shown, shown
    res = smsgw("--config", str(config), "account", "set", "ACME", "--sender", "100200300")
    assert res.returncode == 0 and "is kept as typed: it is no phone number" in res.stdout, res.stdout


def test_a_short_code_sender_is_not_told_to_take_a_country_code(tmp_path: Path) -> None:
    # 7333 is no national form of any phone number: "+48 7333" reaches nobody.
    [line] = warned(tmp_path, cimd2_config(tmp_path, "+48500100", default="7333"))
    assert "cannot carry [gateway] default_sender" in line, line
    assert "national form" not in line and "country code" not in line, line


def test_an_eight_digit_short_code_sender_is_not_told_to_take_a_country_code(tmp_path: Path) -> None:
    """A short code goes by SMPP as TON 3 up to eight digits (`smsc.settings.SHORT_CODE_DIGITS`),
    and is stored as typed up to as many: check-config took one of seven or eight for a phone number
    and told the admin to write it "+48…", which reaches nobody."""
    [line] = warned(tmp_path, cimd2_config(tmp_path, "+48500100", default="80100200"))
    assert "cannot carry [gateway] default_sender" in line, line
    assert "national form" not in line and "country code" not in line, line
