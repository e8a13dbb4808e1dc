"""What one company's admin can do to another company through the panel: nothing.

In earlier versions, against the real daemon: acme's admin, after one SMS to beta's customer, put that
phone on the shared opt-out list as an admin's entry, and beta's mail to its customer got 550 for good
(the phone's START left an admin's entry; the refusal told beta's staff the phone could answer START).
And once the operator had moved one acme address to beta, beta's admin could add any unused address
at acme's domain, which acme's admin could then not add. Real peers: the daemon with its SMTP listener
and web server, an SMPP SMSC over TCP sending the phone's START, two accounts on their own networks.
"""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path
from typing import Any

import httpx

from gateway.config import parse_config
from tests.conftest import (
    DOMAIN,
    STAFF,
    config_text,
    free_port,
    mail,
    running_gateway,
    send_blocking,
    smtp_sink,
)
from tests.fakes.smsc import HappySMSC
from tests.test_policy import code, error_text
from tests.test_web_browser import WEB
from tests.web_helpers import csrf_of, login, password_hash

ACME_ADMIN, BETA_ADMIN, OPERATOR = "boss@acme.example", "bob@beta.example", "op@gw.example"
ACME_IP, BETA_IP = "127.0.0.2", "127.0.0.3"
PHONE = "+48602222222"
BETA = f"""
[[account]]
name = "beta"
relay_networks = ["{BETA_IP}/32"]
users = ["{BETA_ADMIN}"]
sender = "+48100200301"
"""


def _config(tmp_path: Path, smsc_port: int, relay: int) -> Any:
    text = config_text(tmp_path, smsc_port=smsc_port, relay_port=relay, extra=BETA + WEB)
    text = text.replace('relay_networks = ["127.0.0.0/8"]', f'relay_networks = ["{ACME_IP}/32"]')
    return parse_config(text, source="test", base_dir=tmp_path)


async def _people(gw: Any) -> None:
    """acme's admin (after anna@, acme.example's first user), beta's admin, and the operator."""
    accounts = gw.store.accounts

    def add() -> None:
        accounts.add_user(ACME_ADMIN, "acme")
        accounts.add_user(OPERATOR, "acme")
        for email, role in ((ACME_ADMIN, "admin"), (BETA_ADMIN, "admin"), (OPERATOR, "operator")):
            accounts.set_user(email, password_hash=password_hash(), role=role)

    await gw.store.write(add)


async def _send(gw: Any, sender: str, ip: str, body: str) -> tuple[int, str]:
    """A mail from `sender` on its company's network to the phone: (SMTP code, the refusal's text)."""
    msg = mail(f"{PHONE[3:]}@{DOMAIN}", body)
    msg.replace_header("From", sender)
    res = await asyncio.to_thread(send_blocking, gw.port, msg, [f"{PHONE[3:]}@{DOMAIN}"], sender, ip)
    return (250, "") if res.error is None else (code(res) or 0, error_text(res))


def _panel(gw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}")


def _optout_table(page: str) -> str:
    found = re.search(r'<table id="optouts">.*?</table>', page, re.S)
    assert found, page
    return html.unescape(found.group(0))


async def _optout_form(c: httpx.AsyncClient, action: str) -> httpx.Response:
    token = csrf_of((await c.get("/account")).text)
    return await c.post("/optouts", data={"csrf": token, "action": action, "number": PHONE, "confirm": "yes"})


async def test_a_company_admins_opt_out_stops_only_their_own_accounts_sms(tmp_path: Path) -> None:
    relay = free_port()
    async with (
        HappySMSC() as smsc,
        smtp_sink(relay),
        running_gateway(_config(tmp_path, smsc.port, relay)) as gw,
    ):
        await _people(gw)
        assert await _send(gw, STAFF, ACME_IP, "one SMS from acme") == (250, "")
        assert await _send(gw, BETA_ADMIN, BETA_IP, "beta to its customer") == (250, "")
        async with _panel(gw) as acme:
            assert (await login(acme, ACME_ADMIN)).status_code == 303
            r = await _optout_form(acme, "add")
            assert r.status_code == 303, r.text
            # beta's SMS to its customer still go; acme's are refused, saying whom to ask.
            assert await _send(gw, BETA_ADMIN, BETA_IP, "beta after acme's opt-out") == (250, "")
            code, said = await _send(gw, STAFF, ACME_IP, "acme after its opt-out")
            assert (
                code == 550 and "opted out of SMS from this account, listed by the account's admin" in said
            ), said
            assert "ask them" in said and "phone can answer" not in said, said
            # The phone's START leaves the admin's entry (as it leaves the operator's).
            await smsc.wait_for(3)
            assert await smsc.inject_mo(PHONE, "+48100200300", "START") == 1
            done = "SELECT COUNT(*) FROM mo WHERE state NOT IN ('new', 'segment')"
            await gw.until(lambda: gw.store.db.conn.execute(done).fetchone()[0] == 1)
            assert (await _send(gw, STAFF, ACME_IP, "acme after START"))[0] == 550
            async with _panel(gw) as beta:
                assert (await login(beta, BETA_ADMIN)).status_code == 303
                assert PHONE not in _optout_table((await beta.get("/account")).text)
                r = await _optout_form(beta, "remove")  # not beta's to remove
                assert r.status_code == 403, r.text
            listed = _optout_table((await acme.get("/account")).text)
            assert PHONE in listed and "this account's admin" in listed and "Remove" in listed
            r = await _optout_form(acme, "remove")  # acme's admin takes its own entry off again
            assert r.status_code == 303, r.text
        assert await _send(gw, STAFF, ACME_IP, "acme again") == (250, "")
        # The operator's entry is every account's, and only the operator lifts it: no START offered.
        await gw.store.write(lambda: gw.store.policy.add_optout(PHONE, word=None, source="admin"))
        for sender, ip in ((STAFF, ACME_IP), (BETA_ADMIN, BETA_IP)):
            code, said = await _send(gw, sender, ip, "after the operator's entry")
            assert code == 550 and "listed by the gateway's admin; only they can remove it" in said, said
            assert "phone can answer" not in said, said


async def test_a_company_admin_adds_addresses_only_at_a_domain_their_account_holds(tmp_path: Path) -> None:
    relay = free_port()
    async with (
        HappySMSC() as smsc,
        smtp_sink(relay),
        running_gateway(_config(tmp_path, smsc.port, relay)) as gw,
    ):
        await _people(gw)
        accounts = gw.store.accounts

        def move() -> None:  # the operator moves anna@acme.example to beta, as `smsgw user` does
            accounts.remove_user(STAFF)
            accounts.add_user(STAFF, "beta")

        await gw.store.write(move)

        async def add(admin: str, email: str) -> httpx.Response:
            async with _panel(gw) as c:
                assert (await login(c, admin)).status_code == 303
                token = csrf_of((await c.get("/users")).text)
                return await c.post("/users", data={"csrf": token, "action": "add", "email": email})

        for email in ("carl@acme.example", "konkurs@acme.example"):
            r = await add(BETA_ADMIN, email)
            # Refused on the users page (the address kept, its field marked), not a bare 403 page.
            assert r.status_code == 400 and "ask the operator" in html.unescape(r.text), (email, r.text)
            assert f'value="{email}"' in r.text
            assert accounts.find_user(email) is None
        # acme, the domain's holder, keeps adding there; beta at its own domain.
        assert (await add(ACME_ADMIN, "carl@acme.example")).status_code == 303
        assert accounts.find_user("carl@acme.example").account_id == accounts.get_account("acme").id
        assert (await add(BETA_ADMIN, "dave@beta.example")).status_code == 303
        # A public mail provider's domain is nobody's: each company adds its own staff's addresses there.
        await gw.store.write(lambda: accounts.add_user("acme.sales@gmail.com", "acme"))
        await gw.store.write(lambda: accounts.add_user("beta.shop@gmail.com", "beta"))
        assert (await add(BETA_ADMIN, "beta.driver@gmail.com")).status_code == 303
        assert accounts.find_user("beta.driver@gmail.com").account_id == accounts.get_account("beta").id
