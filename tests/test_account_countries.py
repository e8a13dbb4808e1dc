"""`smsgw account set ACME --countries PL`: the account's SMS go to numbers of those countries only, and
a number of another is refused at RCPT with a 550 that names the setting. A mistyped number to a costly
destination abroad was taken, sent and billed; commercial SMS services offer such geo permissions.

A real gateway on 127.0.0.1 with an SMPP simulator, mail through a real SMTP client, the setting
changed through the CLI's entry point while the daemon runs; the panel through its ASGI client."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config import parse_config
from gateway.web.app import WebContext
from tests.conftest import DOMAIN, config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.web_helpers import ADMIN, OPERATOR, as_user, csrf_of
from tests.web_helpers import web as web  # the fixture

PL, DE, CZ = "601123421", "+4915112345678", "+420601123456"  # mobile numbers of each


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


def smsgw(path: Path, *args: str) -> int:
    return main(["-c", str(path), *args])


async def test_a_number_of_another_country_is_refused_at_rcpt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with HappySMSC() as smsc:
        path = tmp_path / "config.toml"
        path.write_text(config_text(tmp_path, smsc_port=smsc.port))
        cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            # Without the setting every number the links serve is taken, abroad too.
            first = [to(PL), to(DE)]
            assert (await gw.send(mail(first, "Before the setting"), first)).refused == {}
            assert smsgw(path, "account", "set", "acme", "--countries", "PL") == 0
            assert "account acme updated" in capsys.readouterr().out.splitlines()
            assert smsgw(path, "account", "show", "acme") == 0
            assert "countries: PL" in capsys.readouterr().out.splitlines()
            group = [to(PL), to(DE), to(CZ)]
            result = await gw.send(mail(group, "After the setting"), group)
            assert result.error is None
            assert set(result.refused) == {to(DE), to(CZ)}
            code, reply = result.refused[to(DE)]
            assert code == 550
            assert reply.decode() == (
                f"5.7.1 <{to(DE)}>: {DE} is a number of DE; this account sends SMS only to numbers of PL"
                " (smsgw account set acme --countries)"
            )
            assert b"+420601123456 is a number of CZ" in result.refused[to(CZ)][1]
            await smsc.wait_for(3)
            sent = gw.store.db.conn.execute("SELECT recipient, text FROM messages ORDER BY id").fetchall()
            assert sent == [
                ("+48601123421", "Before the setting"),
                ("+4915112345678", "Before the setting"),
                ("+48601123421", "After the setting"),
            ]
            # Two countries, then back to any.
            assert smsgw(path, "account", "set", "acme", "--countries", "pl", "cz") == 0
            two = [to(DE), to(CZ)]
            assert set((await gw.send(mail(two, "Two countries"), two)).refused) == {to(DE)}
            assert smsgw(path, "account", "set", "acme", "--countries", "any") == 0
            assert (await gw.send(mail(two, "Any again"), two)).refused == {}


def test_the_cli_refuses_what_is_no_country_code(cli: object) -> None:
    assert cli("account", "add", "acme")[0] == 0  # type: ignore[operator]
    code, _, err = cli("account", "set", "acme", "--countries", "PL", "POL")  # type: ignore[operator]
    assert code == 2
    assert "--countries: POL: not a country code" in err
    assert "countries: any" in cli("account", "show", "acme")[1]  # type: ignore[operator]
    assert cli("account", "set", "acme", "--countries", "pl,cz")[0] == 0  # type: ignore[operator]
    assert "countries: PL, CZ" in cli("account", "show", "acme")[1]  # type: ignore[operator]


async def test_the_operator_sets_the_countries_on_the_account_page(web: WebContext) -> None:
    form = {
        "split_mode": "concatenated",
        "dlr_mail": "failed",
        "overflow": "truncate",
        "sender": "+48100200300",
    }
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/account?account=acme")).text
        assert 'name="countries" id="countries" value=""' in page
        r = await c.post("/account?account=acme", data={**form, "csrf": csrf_of(page), "countries": "pl cz"})
        assert r.status_code == 303, r.text
        assert web.store.accounts.get_account("acme").countries == ("PL", "CZ")
        assert 'name="countries" id="countries" value="PL CZ"' in (await c.get("/account?account=acme")).text
        r = await c.post("/account?account=acme", data={**form, "csrf": csrf_of(page), "countries": "PLN"})
        assert r.status_code == 400 and "PLN: not a country code" in r.text
        assert web.store.accounts.get_account("acme").countries == ("PL", "CZ")
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/account")).text
        assert "Countries SMS may go to (set by the operator): PL, CZ." in page
        assert 'name="countries"' not in page
        # Not the company admin's to widen: the form's field is ignored.
        await c.post("/account", data={**form, "csrf": csrf_of(page), "countries": "any"})
        assert web.store.accounts.get_account("acme").countries == ("PL", "CZ")
