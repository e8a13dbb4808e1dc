"""What the panel tells a company admin to do is done in the panel: its pages and controls, not the
operator's commands, which an admin does not have. The CLI and the SMTP reply keep the commands.

Against the real daemon: an alert mailed by cron through a real SMTP client is recorded unsent (its
`250` names the command), and /messages/recorded, read over HTTP from the daemon's panel, names the
Account page's checkbox instead; the Account page saved with an inbound address that is no user, on
the installation's shared sender, says the Users page and the operator's fallback address where the
CLI says `smsgw user add`, `--sender` and `[replies] fallback_address`.
"""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path

import httpx

from tests.conftest import free_port, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_monitoring_alerts import NOT_SENT, cron, data_reply, to
from tests.test_web_browser import WEB
from tests.test_web_form_errors import SETTINGS
from tests.web_helpers import ADMIN, csrf_of, login, password_hash

CHECKBOX = "Send alerts from monitoring systems and cron"
RECEPTION = "reception@acme.example"


def text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def test_the_panel_names_its_own_controls_where_the_cli_names_commands(tmp_path: Path) -> None:
    relay = free_port()
    async with (
        HappySMSC() as smsc,
        smtp_sink(relay),
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, relay_port=relay, extra=WEB)) as gw,
    ):
        await gw.store.write(
            lambda: (
                gw.store.accounts.add_user(ADMIN, "acme"),
                gw.store.accounts.set_user(ADMIN, password_hash=password_hash(), role="admin"),
            )
        )
        code, said = await asyncio.to_thread(data_reply, gw.port, cron("601123456"), [to("601123456")])
        assert (code, said) == (
            250,
            f"{NOT_SENT}(Auto-Submitted: auto-generated; an account for alerts:"
            " smsgw account set acme --auto-generated send)",
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            assert (await login(c, ADMIN)).status_code == 303
            recorded = text_of((await c.get("/messages/recorded")).text)
            account = await c.get("/account")
            saved = await c.post(
                "/account",
                data={"csrf": csrf_of(account.text), **SETTINGS, "inbound_address": RECEPTION},
                follow_redirects=True,
            )
    assert f'an account for alerts: tick "{CHECKBOX}" on the Account page' in recorded, recorded
    assert CHECKBOX in account.text  # the checkbox it names is there
    notes = text_of(saved.text)
    assert saved.status_code == 200 and "account acme updated" in notes, notes
    assert (
        "account acme has no sender number of its own (its Sender, +48100200300, is shared"
        " with other accounts or the gateway): SMS that answer no conversation still go to the"
        " operator's fallback address, not to the inbound address" in notes
    ), notes
    assert f"{RECEPTION} is not a user of account acme: a Reply from it to such an SMS is refused" in notes
    assert "(add it on the Users page)" in notes, notes
    for cli in ("smsgw account", "smsgw user", "--sender", "--auto-generated", "[replies]"):
        assert cli not in recorded and cli not in notes, cli
