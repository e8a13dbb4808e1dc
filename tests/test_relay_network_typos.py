"""A relay network is read by one rule wherever it is typed: the config's [[account]] seeds, the CLI
and the panel (`gateway.relaynets.network`). A network is a credential: a typo that trusts more
than was meant, or one that can never match, is refused with what was probably meant.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.configbase import ConfigError
from gateway.relaynets import network
from tests.conftest import config_text

ROOT = Path(__file__).resolve().parents[1]
EXIT_CONFIG = 3


def with_networks(tmp_path: Path, networks: str) -> str:
    text = config_text(tmp_path, smsc_port=2775)
    assert '["127.0.0.0/8"]' in text
    return text.replace('["127.0.0.0/8"]', networks, 1)


def refused(tmp_path: Path, networks: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(with_networks(tmp_path, networks), source="config.toml", base_dir=tmp_path)
    return str(caught.value)


def test_a_host_with_a_short_prefix_in_the_config_is_refused_as_the_cli_refuses_it(tmp_path: Path) -> None:
    # Read as 0.0.0.0/0, the whole internet could send SMS as the account's users; check-config
    # only warned of the width, and the daemon seeded it.
    message = refused(tmp_path, '["192.0.2.0/24", "198.51.100.7/0"]')
    assert "[[account]] \"acme\" relay_networks: '198.51.100.7/0' would trust 0.0.0.0/0" in message, message
    assert "did you mean 198.51.100.7/32?" in message, message


def test_check_config_exits_non_zero_on_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(with_networks(tmp_path, '["198.51.100.7/0"]'))
    env = {k: v for k, v in os.environ.items() if k != "SMSGW_CONFIG"} | {"PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(path), "check-config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert res.returncode == EXIT_CONFIG, res.stderr
    assert "did you mean 198.51.100.7/32?" in res.stderr and "Traceback" not in res.stderr, res.stderr


@pytest.mark.parametrize("taken", ['["10.0.0.1/8"]', '["0.0.0.0/0"]', '["2a02:1234::/48"]', '["192.0.2.7"]'])
def test_networks_the_cli_takes_the_config_takes(tmp_path: Path, taken: str) -> None:
    # 10.0.0.1/8 is 10.0.0.0/8 (host bits under /8 are said, not refused); 0.0.0.0/0 is meant and
    # warned of by check-config.
    cfg = parse_config(with_networks(tmp_path, taken), source="config.toml", base_dir=tmp_path)
    assert cfg.account[0].relay_networks == [taken[2:-2]]


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("::ffff:192.0.2.0/120", "192.0.2.0/24"),
        ("::ffff:192.0.2.5/120", "192.0.2.0/24"),
        ("::ffff:192.0.2.7", "192.0.2.7/32"),
        ("::ffff:192.0.2.7/100", "192.0.2.7/32"),  # a host with a short prefix, as for IPv4
    ],
)
def test_an_ipv4_mapped_network_is_refused_with_its_ipv4_form(tmp_path: Path, typed: str, meant: str) -> None:
    # Client addresses are compared unmapped: such a network was stored, listed as trusted and
    # matched no client, whose mail was then refused with no hint why.
    with pytest.raises(
        ConfigError, match=f"IPv4-mapped IPv6 network, which no client address is: write {meant}"
    ):
        network(typed)
    assert f"write {meant}" in refused(tmp_path, f'["{typed}"]')


def test_ipv6_networks_that_only_contain_the_mapped_range_are_taken() -> None:
    assert str(network("::/80")) == "::/80"
    assert str(network("2001:db8::/48")) == "2001:db8::/48"
