"""An account named like the monthly billing summary: refused, and one made before downloads apart.

The summary of all accounts is `_summary.txt` on disk and `<month>-summary.txt` in its mail; an
account `_summary` (its file escaped on disk as `%5Fsummary.txt`) downloaded from the panel as
`2026-12-_summary.txt`, the summary's very name, and the summary's copy as mailed and an account
`summary`'s both as `2026-12-summary (as mailed …).txt`. New accounts cannot take these names, case
aside (the CLI, the config's [[account]], the panel: `gateway.adminrules.account_name_problem`);
accounts made before download with their id, as their mail attaches them.

The CLI in another process over a real SQLite file; the panel over HTTP from the running daemon.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest

from billing_reports.monthly import Month
from billing_reports.writer import SUMMARY, file_name, write_month
from gateway.store.db import Store
from tests.billing_world import cli, prepare
from tests.conftest import free_port, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_web_browser import WEB
from tests.web_helpers import OPERATOR, add_mail, login, password_hash

SUMMARY_NAMES = ["_summary", "Summary", "_SUMMARY", "summary"]


@pytest.mark.parametrize("name", SUMMARY_NAMES)
def test_account_add_refuses_the_summarys_file_names(tmp_path: Path, name: str) -> None:
    config, _cfg = prepare(tmp_path, free_port(), last_billed=None, traffic={"acme": []})
    res = cli(config, "account", "add", name)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    said = " ".join(res.stderr.split())
    assert f"account name {name!r} is the name of the monthly billing summary of all accounts" in said, said
    assert "the account's billing file would go by the same name: give another name" in said, said
    assert name not in cli(config, "account", "list").stdout.split()


def test_names_that_only_contain_summary_are_taken(tmp_path: Path) -> None:
    config, _cfg = prepare(tmp_path, free_port(), last_billed=None, traffic={"acme": []})
    for name in ("summary2", "_summary_", "Summary Sp. z o.o."):
        res = cli(config, "account", "add", name)
        assert res.returncode == 0, (name, res.stderr)


def _disposition_name(header: str) -> str:
    found = re.search(r'filename="([^"]*)"', header)
    assert found, header
    return found.group(1)


async def test_accounts_named_like_the_summary_before_download_under_names_of_their_own(
    tmp_path: Path,
) -> None:
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, extra=WEB)
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        store = Store.open(cfg.db_path)
        try:
            ids = {name: store.accounts.add_account(name).id for name in ("_summary", "summary")}
            for i, name in enumerate(ids):
                add_mail(store, name, f"biuro@{i}.example", f"+4860100001{i}", "x")
            tz = ZoneInfo(cfg.gateway.timezone)
            month = Month.containing(time.time(), tz)
            write_month(store.db.path, cfg.state_dir, month, tz)
        finally:
            store.close()
        async with running_gateway(cfg) as gw:
            await gw.store.write(
                lambda: (
                    gw.store.accounts.add_user(OPERATOR, "acme"),
                    gw.store.accounts.set_user(OPERATOR, password_hash=password_hash(), role="operator"),
                )
            )
            names: dict[str, str] = {}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
                assert (await login(c, OPERATOR)).status_code == 303
                for shown, file in (
                    ("the summary", SUMMARY),
                    ("_summary", file_name("_summary")),
                    ("summary", file_name("summary")),
                ):
                    r = await c.get(f"/billing/{month}/{quote(file)}")
                    assert r.status_code == 200, (shown, r.status_code)
                    names[shown] = _disposition_name(r.headers["content-disposition"])
    assert names == {
        "the summary": f"{month}-summary.txt",  # as its mail attaches it
        "_summary": f"{month}-_summary~{ids['_summary']}.txt",
        "summary": f"{month}-summary~{ids['summary']}.txt",
    }, names
    assert len({n.casefold() for n in names.values()}) == 3
