"""Account names in the monthly billing summary, and `billing show` on a month not billed.

The summary starts each account's line with its name, beside lines of its own: the column header
(`account`), the grand total (`total`), the checksum line (`end`), the premium MOs no service
claimed, and `#` header lines that scripts skip. An account named like one of them made its line
read as that one. New accounts cannot take such names (the CLI, the config's [[account]], the
panel: `gateway.adminrules.account_name_problem`); names already in a database get a leading `'`
in the summary, so that a `'` at the start of its first column is always the gateway's.

The CLI in another process over a real SQLite file; the panel over HTTP in process.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from billing_reports.monthly import Month
from gateway.config import ConfigError, parse_config
from tests.billing_world import TZ, at, cli, prepare
from tests.conftest import free_port
from tests.test_config_checks import shipped
from tests.test_web_admin_day import _error, web  # noqa: F401  (the panel fixture)
from tests.web_helpers import OPERATOR, as_user, csrf_of

UNCLAIMED = "(premium MO without a service)"
REFUSED = ["total", "TOTAL", "End", "account", "#x", "# acme", UNCLAIMED, "(Premium MO without a SERVICE)"]


def summary(cfg: object, month: str) -> list[str]:
    return (cfg.state_dir / "billing" / month / "_summary.txt").read_text().splitlines()  # type: ignore[attr-defined]


def test_names_the_summary_uses_for_its_own_lines_are_in_a_database_made_before(tmp_path: Path) -> None:
    names = ["acme", "total", "End", "#x", UNCLAIMED, "account", "'total", "=x", "'=x"]
    config, cfg = prepare(
        tmp_path, free_port(), last_billed=None, traffic={n: [at(2026, 2, 3, 9)] for n in names}
    )
    res = cli(config, "billing", "run", "--month", "2026-02")
    assert res.returncode == 0, res.stderr
    lines = summary(cfg, "2026-02")
    # A script skipping the `#` header lines (as the README says they may) skips no account.
    body = [line for line in lines if not line.startswith("#")]
    assert [line.split("\t")[0] for line in lines if line.startswith("#")] == [
        "# smsgw billing summary",
        "# month",
        "# period",
    ]
    # One column header, one total, one end line; no line of premium MOs without a service (none came).
    starts = [line.split("\t")[0] for line in body]
    assert starts[0] == "account" and starts[-2:] == ["total", "end"]
    assert starts.count("account") == starts.count("total") == starts.count("end") == 1
    assert UNCLAIMED not in starts
    # Every account has its line; one leading `'` is the gateway's, and dropping it gives the name.
    accounts = starts[1:-2]
    assert sorted(a[1:] if a.startswith("'") else a for a in accounts) == sorted(names)
    assert "'total" in accounts and "''total" in accounts and "'#x" in accounts and "'End" in accounts
    assert "'=x" in accounts and "''=x" in accounts  # a formula's escape, as before; no longer alike


@pytest.mark.parametrize("name", REFUSED)
def test_account_add_refuses_the_summarys_own_words(tmp_path: Path, name: str) -> None:
    config, _cfg = prepare(tmp_path, free_port(), last_billed=None, traffic={"acme": []})
    res = cli(config, "account", "add", name)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    if name.startswith("#"):
        assert "starts with '#', which marks the header lines of the billing files" in res.stderr
        assert "give a name that starts otherwise" in res.stderr
    else:
        assert "is a word of the monthly billing summary" in res.stderr, res.stderr
        assert "give another name" in res.stderr
    listed = cli(config, "account", "list")
    assert name not in listed.stdout.splitlines()[1:] and f" {name} " not in listed.stdout


def test_names_that_only_contain_the_words_are_taken(tmp_path: Path) -> None:
    config, _cfg = prepare(tmp_path, free_port(), last_billed=None, traffic={"acme": []})
    for name in ("Total Media", "endpoint", "x#1", "Account Sp. z o.o.", "'quoted"):
        res = cli(config, "account", "add", name)
        assert res.returncode == 0, (name, res.stderr)


@pytest.mark.parametrize("name", ["total", "#x", UNCLAIMED])
def test_the_configs_accounts_follow_the_same_rule(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(shipped(('name = "demo"', f'name = "{name}"')), source="config.toml", base_dir=tmp_path)
    assert "[[account]]" in str(caught.value) and repr(name) in str(caught.value)


async def test_the_panel_refuses_them_too(web: object) -> None:  # noqa: F811
    async with as_user(web, OPERATOR) as c:  # type: ignore[arg-type]
        token = csrf_of((await c.get("/operator/accounts")).text)
        for name, words in (("End", "word of the monthly billing summary"), ("#ops", "starts with '#'")):
            r = await c.post("/operator/accounts", data={"csrf": token, "action": "add", "name": name})
            assert r.status_code == 400 and words in _error(r.text), (name, _error(r.text))


def test_billing_show_says_whether_the_month_was_billed(tmp_path: Path) -> None:
    this_month = Month.containing(time.time(), TZ)
    traffic = {"demo": [at(2026, 2, 3, 9), time.time() - 60]}
    config, _cfg = prepare(tmp_path, free_port(), last_billed="2026-01", traffic=traffic)
    for month in (str(this_month), "2026-02"):
        assert cli(config, "billing", "run", "--month", month).returncode == 0

    # This month so far, run by hand: not billed, and it has not ended.
    res = cli(config, "billing", "show", "--month", str(this_month), "--account", "DEMO")
    assert res.returncode == 1
    assert "was billed" not in res.stderr, res.stderr
    ends = f"{this_month.next().start(TZ):%Y-%m-%d %H:%M}"
    assert f"{this_month} has not ended (it ends {ends} Europe/Warsaw)" in res.stderr, res.stderr
    assert "no account named 'DEMO' was in it (did you mean 'demo'?)" in res.stderr
    assert f"gets its file at `smsgw billing run --month {this_month}`" in res.stderr
    # Its files are listed and shown as written, with the same words: a snapshot, not a bill.
    res = cli(config, "billing", "show", "--month", str(this_month), "--account", "demo")
    assert res.returncode == 0 and f"note: {this_month} has not ended (it ends {ends}" in res.stderr
    listed = cli(config, "billing", "list").stdout
    assert f"  {this_month} has not ended (it ends {ends}" in listed, listed
    assert "  2026-02 is not billed yet; a run of the whole month wrote its files" in listed, listed

    # A month that ended, run by hand, not billed yet.
    res = cli(config, "billing", "show", "--month", "2026-02", "--account", "DEMO")
    assert res.returncode == 1 and "was billed" not in res.stderr, res.stderr
    assert "2026-02 is not billed yet; a run of the whole month wrote its files" in res.stderr

    # Billed: said so, and running it again is not offered.
    res = cli(config, "billing", "run", "--month", "2026-02", "--send")
    assert res.returncode == 0, res.stderr
    res = cli(config, "billing", "show", "--month", "2026-02", "--account", "DEMO")
    assert res.returncode == 1 and "2026-02 was billed, and no account named 'DEMO'" in res.stderr
    res = cli(config, "billing", "show", "--month", "2026-02", "--account", "demo")
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert "2026-02 is not billed" not in cli(config, "billing", "list").stdout
    assert "billing run" not in res.stderr
