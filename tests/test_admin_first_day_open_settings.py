"""The administrator's first day: settings that open the gateway to everyone are warned of.

A relay network of the whole internet (in the CLI or in the config), a panel or /metrics others
reach without TLS or a token, the simulator's control port beyond loopback, and a host typed with a
prefix that makes it a network: each is said where the admin types it and by check-config. Every
command runs through the real CLI entry point (in this process, or as `smsgw` in a subprocess) on a
real SQLite file in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import config_text
from tests.test_account_show import CLI
from tests.test_first_day_cli import run


def test_a_relay_network_of_the_whole_internet_is_warned_of(cli: CLI) -> None:
    """Anyone on the internet could send SMS, billed to the account, by forging a user's address."""
    code, _, err = cli("account", "add", "ACME", "--relay-network", "192.0.2.0/24")
    assert code == 0 and "warning" not in err, err
    for wide in ("0.0.0.0/0", "::/0", "10.0.0.0/7"):
        code, _, err = cli("account", "set", "ACME", "--add-network", wide)
        assert code == 0 and f"smsgw: warning: relay network {wide} trusts" in err, err
    code, _, err = cli("check-config")
    assert code == 0, err
    assert "account ACME: relay network 0.0.0.0/0 trusts 4,294,967,296 addresses" in err, err
    assert "`smsgw account set 'ACME' --remove-network ::/0`" in err, err
    assert "192.0.2.0/24" not in err


def test_check_config_warns_of_a_wide_relay_network_in_the_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775).replace('["127.0.0.0/8"]', '["0.0.0.0/0"]'))
    res = run("--config", str(path), "check-config")
    assert res.returncode == 0, res.stderr
    said = 'warning: [[account]] "acme" relay_networks: relay network 0.0.0.0/0 trusts'
    assert said in res.stderr, res.stderr


@pytest.mark.parametrize(
    ("web", "warned"),
    [
        ('listen = "0.0.0.0:18080"', True),
        ('listen = "192.0.2.1:18080"', True),
        ('listen = "127.0.0.1:18080"', False),
        ('listen = "localhost:18080"', False),
    ],
)
def test_check_config_warns_of_a_panel_others_reach_without_tls(
    tmp_path: Path, web: str, warned: bool
) -> None:
    """Panel passwords are the users' SMTP AUTH passwords too: in clear over the network."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775) + f"\n[web]\nenabled = true\n{web}\n")
    res = run("--config", str(path), "check-config")
    assert res.returncode == 0, res.stderr
    assert ("without TLS: panel logins" in res.stderr) == warned, res.stderr


@pytest.mark.parametrize(
    ("web", "said"),
    [
        ('listen = "0.0.0.0:18080"', ["without TLS: panel logins", "/metrics wants no token"]),
        ('listen = "0.0.0.0:18080"\nmetrics_token = "t0ken-t0ken-t0ken"', ["without TLS: panel logins"]),
        ('listen = "0.0.0.0:18080"\ntrusted_proxies = ["10.0.0.5"]', ["/metrics wants no token"]),
        ('listen = "127.0.0.1:18080"', []),
    ],
)
def test_check_config_warns_of_metrics_others_reach_without_a_token(
    tmp_path: Path, web: str, said: list[str]
) -> None:
    """Without metrics_token, /metrics names every account and its traffic to whoever reaches it; a
    TLS proxy in front (trusted_proxies) carries the logins safely."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775) + f"\n[web]\nenabled = true\n{web}\n")
    res = run("--config", str(path), "check-config")
    assert res.returncode == 0, res.stderr
    for words in ("without TLS: panel logins", "/metrics wants no token"):
        assert (words in res.stderr) == (words in said), res.stderr


@pytest.mark.parametrize(("host", "warned"), [("0.0.0.0", True), ("127.0.0.1", False)])
def test_check_config_warns_of_a_simulator_others_reach(tmp_path: Path, host: str, warned: bool) -> None:
    """The simulator's control port takes no login: from beyond loopback anyone could send a STOP as
    a customer's phone or a billed premium vote."""
    path = tmp_path / "config.toml"
    simulator = f'[simulator]\nenabled = true\nhost = "{host}"\n'
    text = config_text(tmp_path, smsc_port=2775)
    path.write_text(text.replace("[simulator]\nenabled = false\n", simulator))
    res = run("--config", str(path), "check-config")
    assert res.returncode == 0, res.stderr
    assert ("its control port" in res.stderr) == warned, res.stderr


def test_a_host_with_a_prefix_shorter_than_8_is_refused_as_the_typo_it_is(cli: CLI) -> None:
    """`198.51.100.7/0` was stored as 0.0.0.0/0, the whole internet trusted, with a "read as" note."""
    cli.ok("account", "add", "beta")
    code, _out, err = cli("account", "set", "beta", "--add-network", "198.51.100.7/0")
    assert code != 0
    assert "did you mean 198.51.100.7/32?" in err, err
    assert "0.0.0.0/0" not in cli.ok("account", "show", "beta")
    cli.ok("account", "set", "beta", "--add-network", "10.0.0.1/8")  # host bits under /8: said, kept


def test_ipv6_networks_are_judged_by_ipv6_sizes() -> None:
    """An IPv6 /12 is all of a registry's space (RIPE's 2a00::/12): the IPv4 bar of /8 let it by."""
    from gateway.configbase import ConfigError
    from gateway.relaynets import network, wide_network_doubt

    assert wide_network_doubt("2a00::/12") is not None
    assert wide_network_doubt("2a02:1234::/48") is None
    with pytest.raises(ConfigError, match="did you mean 2a02:1234::7/128"):
        network("2a02:1234::7/12")
