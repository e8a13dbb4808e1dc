"""A misspelt option before the command is named as such, not taken for a wrong command.

`smsgw --confg FILE status` said "invalid choice: 'FILE' (choose from 'run', ...)": argparse left the
unknown option over and took its value for the command. Now it says "unrecognized option --confg (did
you mean --config?)", exit 2; the forms argparse takes (an abbreviation, `-cFILE`, `--config=FILE`)
still work. The CLI runs in a subprocess."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import config_text, free_port
from tests.test_process import CLI, ROOT


def smsgw(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=free_port()))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--confg", "config.toml", "status"], "unrecognized option --confg (did you mean --config?)"),
        (["--lg-level", "INFO", "status"], "unrecognized option --lg-level (did you mean --log-level?)"),
        (["-x", "status"], "unrecognized option -x"),
    ],
)
def test_a_misspelt_option_before_the_command_is_named(config: Path, args: list[str], said: str) -> None:
    out = smsgw(config.parent, *args)
    assert out.returncode == 2, out.stderr
    assert f"smsgw: error: {said}" in out.stderr and "invalid choice" not in out.stderr, out.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--conf", "config.toml", "check-config"],
        ["-cconfig.toml", "check-config"],
        ["--config=config.toml", "check-config"],
        ["--log-level", "WARNING", "-c", "config.toml", "check-config"],
    ],
)
def test_the_forms_argparse_takes_still_work(config: Path, args: list[str]) -> None:
    out = smsgw(config.parent, *args)
    assert out.returncode == 0 and "config OK" in out.stdout + out.stderr, out.stderr


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--json", "status"], "smsgw status --json"),
        (["--wait", "send", "+48500100200", "hi"], "smsgw send --wait"),
        (["--force", "restore", "backup.tar"], "smsgw restore --force"),
        (["--all", "outbox", "retry"], "smsgw outbox retry --all"),
        (["--as", "anna@acme.example", "send"], "smsgw send --as anna@acme.example"),
        (["--js", "status"], "smsgw status --json"),
    ],
)
def test_a_commands_option_before_it_is_told_to_go_after_it(config: Path, args: list[str], hint: str) -> None:
    """`smsgw --json status` said "unrecognized option --json (did you mean --version?)": the status
    command's own option, taken for a misspelt main option because both begin with "--"."""
    out = smsgw(config.parent, "-c", "config.toml", *args)
    assert out.returncode == 2, out.stderr
    said = f"smsgw: error: unrecognized option {args[0]}\n{args[0]} goes after the command: {hint}\n"
    assert said in out.stderr and "did you mean" not in out.stderr, out.stderr


@pytest.mark.parametrize(
    "args", [["--all", "queue", "list"], ["--jsn", "status"], ["--json"], ["--force", "status"]]
)
def test_an_option_of_no_command_named_suggests_no_weak_likeness(config: Path, args: list[str]) -> None:
    """An option neither the named command nor `smsgw` has is only named: "--json" is not "--version"."""
    out = smsgw(config.parent, *args)
    assert out.returncode == 2, out.stderr
    assert out.stderr.endswith(f"smsgw: error: unrecognized option {args[0]}\n"), out.stderr


def test_an_unknown_command_is_still_an_invalid_choice(config: Path) -> None:
    out = smsgw(ROOT, "--config", str(config), "stauts")
    assert out.returncode == 2 and "invalid choice: 'stauts'" in out.stderr, out.stderr
