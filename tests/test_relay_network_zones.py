"""A zone id in a relay network (`2001:db8::%x/32`, `fe80::%lo/64`) is refused, by the CLI and in
`[[account]] relay_networks`: kept, it got around "each network is one account's" (the overlap
checks saw no other account's network in it, while the relay matched it whatever the zone), and
`--remove-network` by its plain form failed. The CLI and check-config run as real processes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import config_text, free_port
from tests.test_process import smsgw


def _config(tmp_path: Path, networks: str = '"127.0.0.0/8"') -> Path:
    text = config_text(tmp_path, smsc_port=free_port()).replace(
        'relay_networks = ["127.0.0.0/8"]', f"relay_networks = [{networks}]"
    )
    assert networks in text
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o640)
    (tmp_path / "state").mkdir(exist_ok=True)  # as install-service or the first start leaves it
    return path


def test_account_add_refuses_a_network_with_a_zone_id(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert smsgw(config, "check-config").returncode == 0
    assert smsgw(config, "account", "add", "acme", "--relay-network", "2001:db8::/32").returncode == 0
    res = smsgw(config, "account", "add", "beta", "--relay-network", "2001:db8::%x/32")
    assert res.returncode != 0, (res.stdout, res.stderr)
    assert "zone id" in res.stderr and "write 2001:db8::/32" in res.stderr, res.stderr
    assert "2001:db8::" not in smsgw(config, "account", "show", "beta").stdout
    res = smsgw(config, "account", "add", "gamma", "--relay-network", "fe80::%lo/64")
    assert res.returncode != 0 and "zone id" in res.stderr, res.stderr


def test_check_config_refuses_a_zone_id_in_account_relay_networks(tmp_path: Path) -> None:
    config = _config(tmp_path, '"127.0.0.0/8", "fe80::%lo/64"')
    res = smsgw(config, "check-config")
    assert res.returncode != 0, (res.stdout, res.stderr)
    assert "zone id" in res.stderr and "write fe80::/64" in res.stderr, res.stderr


def test_a_network_stored_with_a_zone_before_is_removed_by_its_plain_form(tmp_path: Path) -> None:
    # A row an older version stored with its zone: refused as typed now, it could not be removed at all
    # (its plain form matched no row), and reading it made every `account set` of its account fail.
    config = _config(tmp_path)
    assert smsgw(config, "account", "add", "beta", "--relay-network", "192.0.2.0/24").returncode == 0
    with sqlite3.connect(tmp_path / "state" / "smsgw.db") as db:
        (beta,) = db.execute("SELECT id FROM accounts WHERE name = 'beta'").fetchone()
        db.execute("INSERT INTO account_networks (account_id, cidr) VALUES (?, '2001:db8::%x/32')", (beta,))
    res = smsgw(config, "account", "set", "beta", "--remove-network", "2001:db8::/32")
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert "was not one of" not in res.stdout, res.stdout
    with sqlite3.connect(tmp_path / "state" / "smsgw.db") as db:
        rows = [r[0] for r in db.execute("SELECT cidr FROM account_networks WHERE account_id = ?", (beta,))]
    assert rows == ["192.0.2.0/24"], rows
