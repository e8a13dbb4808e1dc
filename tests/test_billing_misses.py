"""`billing run --account acme` of an account named ACME said only "no account named 'acme' existed";
`billing show` of a month that ended before the gateway had an account said "write it with `smsgw
billing run --month 2026-11`", which answered "nothing to bill", exit 0, and wrote no file."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.conftest import config_text
from tests.test_process import smsgw


def _months(tz: str) -> tuple[str, str]:
    """This month and the one before it, in the gateway's time zone."""
    now = datetime.fromtimestamp(time.time(), ZoneInfo(tz))
    before = (now.year - 1, 12) if now.month == 1 else (now.year, now.month - 1)
    return f"{now:%Y-%m}", f"{before[0]}-{before[1]:02d}"


def _with_account(tmp_path: Path, name: str) -> Path:
    """A gateway's config whose database has the one account `name`."""
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    assert smsgw(config, "account", "add", name).returncode == 0
    return config


def test_a_name_in_another_case_and_a_month_with_nothing_to_bill_are_told_so(tmp_path: Path) -> None:
    config = _with_account(tmp_path, "ACME")
    this, before = _months("Europe/Warsaw")
    for month in (this, before):
        res = smsgw(config, "billing", "run", "--month", month, "--account", "acme")
        assert res.returncode == 1, res.stderr
        assert f"no account named 'acme' existed in {month}" in res.stderr
        assert res.stderr.rstrip().endswith("did you mean 'ACME'?"), res.stderr
    res = smsgw(config, "billing", "show", "--month", before)
    assert res.returncode == 1
    assert f"{before} ended before this gateway had an account" in res.stderr, res.stderr
    assert "there is nothing to bill in it" in res.stderr and "write it with" not in res.stderr, res.stderr
    run = smsgw(config, "billing", "run", "--month", before)  # what the old words sent the admin to
    assert run.returncode == 0 and "nothing to bill" in run.stdout, run.stdout
    # A month with accounts to bill is still told the run that writes it.
    res = smsgw(config, "billing", "show", "--month", this)
    assert f"write it with `smsgw billing run --month {this}`" in res.stderr, res.stderr


def test_an_account_named_in_lower_case_is_suggested_for_the_name_typed_in_upper_case(tmp_path: Path) -> None:
    config = _with_account(tmp_path, "acme")
    this, _ = _months("Europe/Warsaw")
    res = smsgw(config, "billing", "run", "--month", this, "--account", "ACME")
    assert res.returncode == 1, res.stderr
    assert res.stderr.rstrip().endswith("did you mean 'acme'?"), res.stderr
