"""`billing run` for a month that ended before the gateway had an account bills nothing, and says so.

It wrote an empty `_summary.txt` of 0 accounts, which `billing list` then showed as a month billed
from before the installation; the scheduled run already never bills such a month. Nothing to bill is
no failure: it exited 1, and a cron job billing the last month reported a quiet month as one.
"""

from __future__ import annotations

import time
from typing import Any
from zoneinfo import ZoneInfo

from billing_reports.monthly import Month
from gateway.config import parse_config
from gateway.store.db import Store


def test_a_month_before_the_first_account_bills_nothing_exits_0_and_writes_nothing(cli: Any) -> None:
    cli.ok("account", "add", "ACME")
    tz = ZoneInfo("Europe/Warsaw")
    now = Month.containing(time.time(), tz)
    before = now.previous().previous()
    for command in (["billing", "run", "--month", str(before)], ["billing", "--month", str(before)]):
        code, out, err = cli(*command)
        assert code == 0, (command, out, err)
        said = f"{before} ended before this gateway had an account (the first account was added on"
        assert len(out) == 1 and said in out[0] and out[0].endswith("nothing to bill"), out
    code, out, _err = cli("billing", "list")
    assert code == 0 and out == [f"no billing files in {cli.path.parent / 'state' / 'billing'}"], out
    code, out, err = cli("billing", "run", "--month", str(now))  # the month so far: it had the account
    assert code == 0 and any("summary of 1 account(s)" in line for line in out), (out, err)


def test_no_account_at_all_says_so(cli: Any) -> None:
    cfg = parse_config(cli.path.read_text(), source="test", base_dir=cli.path.parent)
    Store.open(cfg.db_path).close()
    code, out, err = cli("billing", "run", "--month", "2025-01")
    assert code == 0 and out == [
        "2025-01 ended before this gateway had an account (no account exists yet): nothing to bill"
    ], (out, err)


def test_an_account_named_for_a_month_before_the_first_is_refused_as_after_it(cli: Any) -> None:
    # A typo in --account: refused after the installation, and it exited 0 "nothing to bill" before it.
    cli.ok("account", "add", "ACME")
    tz = ZoneInfo("Europe/Warsaw")
    before = Month.containing(time.time(), tz).previous().previous()
    code, out, err = cli("billing", "run", "--month", str(before), "--account", "NOSUCH")
    assert code == 1, (out, err)
    assert f"no account named 'NOSUCH' existed in {before}" in err and not out, (out, err)
