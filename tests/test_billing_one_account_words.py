"""`billing run --account` on a month that has a summary rewrites the summary with the account's file,
and says why the month has one: billed, or written by an earlier run of the whole month (this month
so far, or a month that ended and is not billed yet). It said "the month was billed" of them all."""

from __future__ import annotations

import time
from pathlib import Path

from billing_reports.monthly import Month
from tests.billing_world import TZ, at, cli, prepare
from tests.conftest import free_port


def said(config: Path, month: str) -> str:
    assert cli(config, "billing", "run", "--month", month).returncode == 0
    one = cli(config, "billing", "run", "--month", month, "--account", "acme")
    assert one.returncode == 0, one.stderr
    [line] = [line for line in one.stdout.splitlines() if "_summary.txt" in line]
    return line.split(": ", 1)[1]


def test_one_account_run_says_why_the_month_has_a_summary(tmp_path: Path) -> None:
    this_month = Month.containing(time.time(), TZ)
    ended = Month(2026, 4)
    assert ended < this_month
    traffic = {"acme": [at(2026, 3, 2, 8), at(2026, 4, 2, 8), time.time() - 60], "beta": [at(2026, 3, 3, 9)]}
    config, _cfg = prepare(tmp_path, free_port(), last_billed="2026-03", traffic=traffic)

    assert said(config, "2026-03") == "summary rewritten with it (the month was billed)"
    assert said(config, str(ended)) == (
        "summary rewritten with it (a run of the whole month wrote one; the month is not billed yet)"
    )
    ends = f"{this_month.next().start(TZ):%Y-%m-%d %H:%M}"
    assert said(config, str(this_month)) == (
        "summary rewritten with it (a run of the whole month wrote one; the month has not ended:"
        f" it ends {ends})"
    )
