"""The administrator's first day: what the CLI says to the words and mistakes a new admin types.

Every command runs through the real CLI entry point (in this process, or as `smsgw` in a subprocess)
on a real SQLite file in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import config_text
from tests.test_account_show import CLI


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> CLI:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()  # as install-service or the daemon's first start leaves it
    return CLI(path, capsys)


# ---- --sender default -------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["default", "Default"])
def test_sender_default_goes_back_to_the_configured_default_sender(cli: CLI, word: str) -> None:
    cli.ok("account", "add", "beta", "--sender", "+48600100200")
    code, out, err = cli("account", "set", "beta", "--sender", word)
    assert code == 0, err
    assert not any("alphanumeric" in line for line in out), out  # the word every other option takes
    assert "sender: default (+48100200300)" in cli.ok("account", "show", "beta")
    code, out, err = cli("account", "add", "gamma", "--sender", word)
    assert code == 0 and not any("alphanumeric" in line for line in out), (out, err)
    assert "sender: default (+48100200300)" in cli.ok("account", "show", "gamma")


def test_sender_none_is_refused_not_stored_as_a_name(cli: CLI) -> None:
    cli.ok("account", "add", "beta")
    code, _, err = cli("account", "set", "beta", "--sender", "none")
    assert code == 2 and "would be sent as a name" in err and "--sender default" in err, err
    assert "sender: default (+48100200300)" in cli.ok("account", "show", "beta")


def test_sender_help_names_default(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli.main import main

    with pytest.raises(SystemExit):
        main(["account", "set", "--help"])
    assert "'default' for [gateway]" in " ".join(capsys.readouterr().out.split())


def test_check_config_warns_of_a_sender_stored_as_the_word_default(cli: CLI) -> None:
    """An account set to the name "default" before the word meant the default: every SMS of it goes
    out from that name."""
    import sqlite3
    from contextlib import closing

    cli.ok("account", "add", "beta")
    with closing(sqlite3.connect(cli.path.parent / "state" / "smsgw.db")) as conn, conn:
        conn.execute("UPDATE accounts SET sender = 'default' WHERE name = 'beta'")
    code, _, err = cli("check-config")
    assert code == 0 and "beta" in err and "would be sent as a name" in err, err
