"""`smsgw COMMAND --help` answers what each option and argument is, before a new admin has to guess."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli.main import build_parser
from tests.conftest import config_text, free_port

CLI = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, argparse._SubParsersAction | None]]:
    """Every (sub)command's parser with its path, and the subcommand action it holds, if any.

    All of them, those other modules register (gateway/conversations, gateway/premium) included:
    an admin reads `smsgw mo list --help` as any other.
    """
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    yield path, parser, groups[0] if groups else None
    for group in groups:
        for name, child in group.choices.items():
            yield from commands(child, (*path, name))


def test_the_walk_reaches_the_commands_other_modules_register() -> None:
    paths = {" ".join(path) for path, _parser, _sub in commands(build_parser())}
    assert {"mo list", "conversation list", "premium verify", "premium stats", "billing run"} <= paths


def test_every_option_and_argument_says_what_it_is() -> None:
    missing = [
        f"smsgw {' '.join(path)} {'/'.join(action.option_strings) or action.dest}"
        for path, parser, _sub in commands(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction) and not action.help
    ]
    assert missing == []


def test_every_subcommand_placeholder_is_action() -> None:
    placeholders = {
        " ".join(path): sub.metavar
        for path, _parser, sub in commands(build_parser())
        if sub is not None and path
    }
    assert placeholders and set(placeholders.values()) == {"ACTION"}, placeholders


def test_check_config_describes_itself() -> None:
    res = run("check-config", "--help")
    assert res.returncode == 0
    assert "exit 0 if it is fine, 3 if not" in " ".join(res.stdout.split())


def test_send_says_national_numbers_work() -> None:
    res = run("send", "--help")
    text = " ".join(res.stdout.split())
    assert res.returncode == 0 and "601123456" in text and "+48601123456" in text
    assert "--subject SUBJECT" in text and "default none" in text


def help_text(*args: str) -> str:
    """`smsgw ARGS --help` in this process, on one line: the parser is what `smsgw` itself builds
    (the tests above start the real command; nine more starts only cost CI seconds)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*args, "--help"])
    assert exited.value.code == 0
    return " ".join(out.getvalue().split())


def test_options_with_a_default_name_it() -> None:
    text = help_text("run")
    assert "(default INFO)" in text
    text = help_text("queue", "list")
    assert "(default 50)" in text and "(default: all)" in text
    text = help_text("account", "add")
    assert "may be repeated" in text
    text = help_text("account", "set")
    assert "--end-marker=---" in text
    for command in (["mo", "list"], ["conversation", "list"]):
        text = help_text(*command)
        assert "--limit LIMIT at most this many lines (default 50)" in text, text
    text = help_text("mo", "list")
    assert "in [gateway] timezone" in text
    text = help_text("premium", "verify")
    assert "default: only show the state" in text


def test_status_help_gives_the_exit_status_a_mistyped_state_dir_gets(tmp_path: Path) -> None:
    # The help put "no database at a mistyped state_dir" under exit 1; status exits 3 for it, as
    # the README says (nothing ever ran there).
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))  # its state_dir does not exist
    res = run("--config", str(config), "status")
    assert res.returncode == 3 and "no database at" in res.stderr, res.stderr
    running, not_running = help_text("status").split("; 3 it is not running")
    assert "mistyped state_dir" in not_running and "mistyped" not in running


def test_mo_list_names_every_outcome_as_the_code_writes_it_and_the_readme_agrees() -> None:
    # The help left out premium and new; the README said "opt-out" (the code writes optout) and left
    # out throttled and failed, and called `conversation list` "open conversations".
    from gateway.conversations.cli import MO_STATES

    text = help_text("mo", "list")
    [row] = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `mo list")]
    for state in MO_STATES:
        assert f"{state} (" in text, state
        assert state in row, state
    assert "opt-out," not in row and "unreached" in row
    assert "unreached (its SMS has not reached the phone" in help_text("conversation", "list")


def test_simulator_help_says_whom_reply_to_last_answers_and_what_each_report_status_does() -> None:
    # It said "the last SMS the simulator received": one that failed never reached a phone, and it
    # is not answered (README). --status had no words but its default.
    text = help_text("simulator", "send-mo")
    assert "the last SMS a phone got" in text and "simulator received" not in text
    assert "premium number" in text
    text = help_text("simulator", "send-report")
    assert "failed (the sender gets a bounce)" in text and "pending (not final" in text
