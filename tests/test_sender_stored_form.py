"""An account's sender typed in the national form (500100201) or after the international prefix
(0048500100201), by the web panel and by the CLI: one form stored, +48500100201, and said.

The panel stored '500100201' as typed while `account set --sender` stored +48500100201: on a CIMD2
link with sender_prefix +48500100 the panel's form went out with no originator (the phones answered
the bare interface number, their answers lost to the fallback). `--sender 0048500100201` was kept
as typed and went on SMPP as a national number (TON 2) with an international prefix. The daemon's
panel over TCP, the CLI as a process, a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from tests.test_check_config_sender_prefix import cimd2_config, with_database, write
from tests.test_config_checks import smsgw
from tests.test_web_stale_forms import settings_form
from tests.test_web_stale_limits import admin_and_operator
from tests.web_helpers import csrf_of


async def test_the_panel_stores_a_national_or_00_sender_in_its_international_form_and_says_so(
    tmp_path: Path,
) -> None:
    async with admin_and_operator(tmp_path) as (gw, _admin, operator):
        form = settings_form((await operator.get("/account?account=acme")).text)
        r = await operator.post("/account?account=acme", data={**form, "sender": "500100201"})
        assert r.status_code == 303, r.text
        page = (await operator.get(r.headers["location"])).text
        assert gw.store.accounts.get_account("acme").sender == "+48500100201"
        said = (
            "sender 500100201 is taken as +48500100201, its international form ([gateway] default_region PL)"
        )
        assert said in page, page[-2000:]

        token = csrf_of((await operator.get("/operator/accounts")).text)
        new = {"csrf": token, "action": "add", "name": "newco", "sender": "0048500100202", "networks": ""}
        r = await operator.post("/operator/accounts", data=new)
        assert r.status_code == 303, r.text
        page = (await operator.get(r.headers["location"])).text
        assert gw.store.accounts.get_account("newco").sender == "+48500100202"
        assert "sender 0048500100202 is taken as +48500100202, its international form (00 is +)" in page


def test_the_cli_takes_a_00_sender_in_its_international_form(tmp_path: Path) -> None:
    config = with_database(write(tmp_path, cimd2_config(tmp_path, "+48500100")))
    assert smsgw("--config", str(config), "account", "add", "ACME").returncode == 0
    res = smsgw("--config", str(config), "account", "set", "ACME", "--sender", "0048500100201")
    assert res.returncode == 0, res.stderr
    assert (
        "note: --sender 0048500100201 is taken as +48500100201, its international form (00 is +)"
        in res.stdout
    )
    shown = smsgw("--config", str(config), "account", "show", "ACME").stdout
    assert "+48500100201" in shown and "0048500100201" not in shown, shown
