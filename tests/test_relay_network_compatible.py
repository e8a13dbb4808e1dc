"""An IPv4-compatible IPv6 relay network (`::127.0.0.7/128`, deprecated by RFC 4291 2.5.5.1) is refused
with the IPv4 form it meant, as an IPv4-mapped one (`::ffff:…`) is.

`account add beta --relay-network ::127.0.0.7/128` was taken and listed as `::7f00:7/128`: trusted,
said the CLI, while no client ever has that address (an IPv4 client is its IPv4 address), so the mail
server at 127.0.0.7 was refused with no hint why. The CLI runs as a process on a real SQLite file;
the form it names is then asked over a real SMTP session from 127.0.0.7.
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.configbase import ConfigError
from gateway.relaynets import network
from tests.conftest import config_text, free_port, running_gateway
from tests.test_cli_errors import run, write_config

BOB = "bob@beta.example"


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("::127.0.0.7/128", "127.0.0.7/32"),
        ("::7f00:7", "127.0.0.7/32"),  # the same address, as the CLI used to list it
        ("::192.0.2.0/120", "192.0.2.0/24"),
        ("::192.0.2.7/100", "192.0.2.7/32"),  # a host with a short prefix, as for IPv4
    ],
)
def test_an_ipv4_compatible_network_is_refused_with_its_ipv4_form(typed: str, meant: str) -> None:
    with pytest.raises(ConfigError, match=f"IPv4-compatible .*which no client address is: write {meant}$"):
        network(typed)


@pytest.mark.parametrize("taken", ["::1/128", "::/0", "::/96", "2001:db8::7f00:7/128"])
def test_ipv6s_own_addresses_are_still_taken(taken: str) -> None:
    assert str(network(taken)) == taken


async def test_the_cli_refuses_it_and_the_form_it_names_relays(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=free_port()).replace('["127.0.0.0/8"]', '["127.0.0.2/32"]', 1)
    path = write_config(tmp_path, text)
    (tmp_path / "state").mkdir()
    added = run(path, "account", "add", "beta", "--relay-network", "::127.0.0.7/128")
    assert added.returncode == 2, (added.stdout, added.stderr)  # a usage error, as "not a network"
    assert "is an IPv4-compatible (deprecated) IPv6 network" in added.stderr, added.stderr
    assert "write 127.0.0.7/32" in added.stderr and "Traceback" not in added.stderr, added.stderr
    assert "beta" not in run(path, "account", "list").stdout  # nothing written
    set_ = run(path, "account", "set", "acme", "--add-network", "::7f00:7/128")
    assert set_.returncode == 2 and "write 127.0.0.7/32" in set_.stderr, (set_.stdout, set_.stderr)
    assert "7f00" not in run(path, "account", "show", "acme").stdout
    # As the refusal says: the IPv4 form, which the relay matches.
    assert run(path, "account", "add", "beta", "--relay-network", "127.0.0.7/32").returncode == 0
    assert run(path, "user", "add", BOB, "--account", "beta").returncode == 0

    def mail_from() -> str:
        with smtplib.SMTP("127.0.0.1", gw.port, source_address=("127.0.0.7", 0), timeout=30) as c:
            c.ehlo("mx.beta.example")
            code, said = c.docmd("MAIL", f"FROM:<{BOB}>")
            return f"{code} {said.decode()}"

    async with running_gateway(load_config(path)) as gw:
        answer = await asyncio.to_thread(mail_from)
    assert answer.startswith("250"), answer
