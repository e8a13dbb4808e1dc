"""An address beginning with a dash, which the panel takes (`-2+3@acme.pl`), is named on the command
line as it is, by every command taking one, as an argument or an option's value.

argparse read it as an unknown option: `smsgw user passwd -2+3@acme.pl` was refused with "the
following arguments are required: email", leaving `--` (which nobody thinks of) the only way.

The CLI through its entry point on a real SQLite file (`tests.test_cli_corners.cli`).
"""

from __future__ import annotations

import io

import pytest

from tests.test_account_show import CLI
from tests.test_cli_corners import cli as cli  # the fixture

DASHED = "-2+3@acme.pl"


def test_every_command_taking_an_address_takes_one_beginning_with_a_dash(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    with cli.path.open("a") as config:
        config.write('\n[premium]\nnumbers = ["7355"]\n')
    cli.ok("account", "add", "acme")
    cli.ok("user", "add", DASHED, "--account", "acme")
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password 1\n"))
    cli.ok("user", "passwd", DASHED)
    cli.ok("user", "set", DASHED, "--daily-limit", "5")
    assert any(DASHED in line and "5" in line for line in cli.ok("account", "show", "acme"))
    cli.ok("auth", "unlock", DASHED)
    cli.ok("premium", "add", "KP123", "--account", "acme", "--email", DASHED, "--reply-acl", DASHED)
    assert any(DASHED in line for line in cli.ok("premium", "list"))
    # `--` still says where the arguments begin, as before.
    cli.ok("user", "set", "--daily-limit", "6", "--", DASHED)
    cli.ok("user", "remove", DASHED)


def test_a_misspelt_option_is_still_refused_not_taken_for_an_address(cli: CLI) -> None:
    cli.ok("account", "add", "acme")
    with pytest.raises(SystemExit) as exited:
        cli("user", "add", "anna@acme.pl", "--acount=x@y.pl")
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        cli("user", "add", "--acount=x@y.pl")
    assert exited.value.code == 2
    assert "the following arguments are required: email" in cli.capsys.readouterr().err


@pytest.mark.parametrize("address", ["-helpdesk@acme.pl", "-h.nowak@acme.pl", "-h@acme.pl"])
def test_an_address_beginning_with_the_help_flag_is_an_address(
    cli: CLI, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    # argparse matched `-h` with the rest joined and refused "ignored explicit argument".
    cli.ok("account", "add", "acme")
    cli.ok("user", "add", address, "--account", "acme")
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password 1\n"))
    cli.ok("user", "passwd", address)
    cli.ok("user", "set", address, "--daily-limit", "5")
    assert any(address in line for line in cli.ok("account", "show", "acme"))


def test_help_joined_to_the_config_flag_is_still_both_options(cli: CLI) -> None:
    # `-hc FILE` is `-h` then `-c FILE`: a walk over joined flags that ends in an option taking a
    # value keeps them options, so the address reading stays with what argparse would refuse.
    with pytest.raises(SystemExit) as exited:
        cli("-hc./a@b.toml", "status")
    assert exited.value.code == 0
    assert "usage:" in cli.capsys.readouterr().out
