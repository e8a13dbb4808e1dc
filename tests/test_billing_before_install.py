"""`billing run` for a month that ended before the gateway had an account bills nothing, and says so.

It wrote an empty `_summary.txt` of 0 accounts, which `billing list` then showed as a month billed
from before the installation; the scheduled run already never bills such a month.
"""

from __future__ import annotations

import time
from typing import Any
from zoneinfo import ZoneInfo

from billing_reports.monthly import Month
from gateway.config import parse_config
from gateway.store.db import Store


def test_a_month_before_the_first_account_is_refused_and_nothing_is_written(cli: Any) -> None:
    cli.ok("account", "add", "ACME")
    tz = ZoneInfo("Europe/Warsaw")
    now = Month.containing(time.time(), tz)
    before = now.previous().previous()
    code, out, err = cli("billing", "run", "--month", str(before))
    assert code == 1, (out, err)
    assert f"{before} ended before this gateway had an account (the first account was added on" in err, err
    assert "nothing to bill" in err
    code, out, _err = cli("billing", "list")
    assert code == 0 and out == [f"no billing files in {cli.path.parent / 'state' / 'billing'}"], out
    code, out, err = cli("billing", "run", "--month", str(now))  # the month so far: it had the account
    assert code == 0 and any("summary of 1 account(s)" in line for line in out), (out, err)


def test_no_account_at_all_says_so(cli: Any) -> None:
    cfg = parse_config(cli.path.read_text(), source="test", base_dir=cli.path.parent)
    Store.open(cfg.db_path).close()
    code, _out, err = cli("billing", "run", "--month", "2025-01")
    assert code == 1 and "(no account exists yet): nothing to bill" in err, err
