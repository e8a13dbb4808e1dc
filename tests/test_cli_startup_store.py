"""What a command that opens the store imports beyond it: the tests start hundreds of `smsgw` processes,
and scripts run `account list` and `queue list` often. The certificate checks (`gateway.configcheck`, with the
cryptography package) word errors only, and the CIMD2 client came in with the store's CIMD2 times:
together some 60 ms of CPU in each command (`tests.test_cli_startup` has the parser's side)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.store.db import Store
from tests.conftest import config_text, free_port
from tests.test_cli_startup import imported

NOT_FOR_THE_STORE = ("gateway.configcheck", "gateway.tlsdoubts", "cryptography", "smsc.cimd2.link")


# Not `status`: it says the config's doubts as check-config does (`gateway.configdoubts`, `configcheck`).
@pytest.mark.parametrize("args", [("account", "list"), ("queue", "list"), ("optout", "list")], ids=" ".join)
def test_a_command_on_the_store_imports_no_certificate_checks_and_no_link(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    store = Store.open(tmp_path / "state" / "smsgw.db")
    store.accounts.add_account("acme", sender="+48100200300")
    store.close()
    res, modules = imported("--config", str(config), *args, cwd=tmp_path)
    assert res.returncode == 0, res
    assert "Traceback" not in res.stderr, res.stderr
    assert "acme" in res.stdout or args != ("account", "list"), res.stdout
    assert "gateway.store.db" in modules  # it did open the store
    found = sorted(m for m in modules if any(m == n or m.startswith(f"{n}.") for n in NOT_FOR_THE_STORE))
    assert found == []


def test_the_version_is_read_once_asked_for_and_still_said() -> None:
    res, _ = imported("--version")
    assert res.returncode == 0 and res.stdout.strip().startswith("smsgw 0"), res
    import gateway

    assert gateway.__version__ == res.stdout.split()[1]


def test_check_config_reads_no_certificate_where_none_is_configured(tmp_path: Path) -> None:
    # The tests' configs serve a self-signed pair the daemon makes: check-config has no file to read.
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    res, modules = imported("--config", str(config), "check-config", cwd=tmp_path)
    assert res.returncode == 0 and "config OK" in res.stdout, res
    assert "gateway.configcheck" in modules and "gateway.tlsdoubts" in modules  # its checks did run
    assert sorted(m for m in modules if m == "cryptography" or m.startswith("cryptography.")) == []
