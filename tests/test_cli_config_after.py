"""`--config` after the command, as the spec writes it (R-7.1: `smsgw run --config config.toml`): it
was refused as an unknown argument (exit 2), and only `smsgw --config config.toml run` worked."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gateway.cli.main import build_parser
from tests.conftest import free_port
from tests.test_process import CLI, write_config


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # In a directory without a config.toml: the config can only come from the option.
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_the_config_may_follow_the_command(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = write_config(tmp_path / "conf", free_port(), free_port())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    after = run(elsewhere, "check-config", "--config", str(path))
    assert after.returncode == 0, after.stderr
    assert after.stdout.startswith("config OK")
    # Two levels down (a command's action): the state directory is the config's.
    nested = run(elsewhere, "outbox", "list", "--config", str(path))
    assert "unrecognized arguments" not in nested.stderr
    assert str(tmp_path / "conf") in nested.stdout + nested.stderr
    # Before the command, as always.
    before = run(elsewhere, "--config", str(path), "check-config")
    assert before.returncode == 0, before.stderr


def test_a_text_or_reason_starting_with_dash_c_is_not_taken_for_the_config() -> None:
    # With `-c` on every command, argparse read "-cancelled: meeting moved" as `-c` and its value:
    # the SMS text was missing (exit 2). The short form stays before the command only.
    parser = build_parser()
    args = parser.parse_args(["send", "601123456", "-cancelled: meeting moved"])
    assert args.text == "-cancelled: meeting moved"
    args = parser.parse_args(["account", "suspend", "ACME", "--reason", "-c unpaid"])
    assert args.reason == "-c unpaid"
    assert parser.parse_args(["-c", "a.toml", "send", "601123456", "hi"]).config == Path("a.toml")
    assert parser.parse_args(["send", "601123456", "hi", "--config", "b.toml"]).config == Path("b.toml")
