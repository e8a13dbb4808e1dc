"""What a `smsgw` command imports before it answers.

Every command imported most of the daemon first (the SMTP intake, billing, the config models):
`smsgw --version` took over a second of CPU, and monitoring runs `smsgw status` every minute.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli.commands import COMMANDS, Commands
from gateway.cli.main import build_parser
from gateway.store.db import Store
from tests.conftest import config_text, free_port

ROOT = Path(__file__).resolve().parents[1]

# Runs a command as the `smsgw` script does, then names every module it imported (on stderr).
PROBE = """
import sys
from gateway.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("modules:", *sorted(sys.modules), file=sys.stderr)
sys.exit(code)
"""


def imported(*args: str, cwd: Path = ROOT) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    res = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )
    line = next(x for x in res.stderr.splitlines() if x.startswith("modules:"))
    return res, set(line.split()[1:])


def test_version_imports_none_of_the_daemon() -> None:
    res, modules = imported("--version")
    assert res.returncode == 0 and res.stdout.startswith("smsgw "), res
    heavy = {
        "gateway.smtp.intake",
        "billing_reports.writer",
        "gateway.config",
        "gateway.store.db",
        "gateway.logging",
        "structlog",
        "pydantic",
        "gateway.cli.ops",
    }
    assert heavy & modules == set()


# The daemon's side (the store, the SMTP side, the SMSC drivers, the mail server library), the config's
# schema, the logging and the TLS checks: a command's parser needs none of them, and monitoring and
# shell completion run `--help` often.
DAEMON = (
    "gateway.store.db",
    "gateway.smtp",
    "smsc.cimd2",
    "smsc.smpp",
    "aiosmtpd",
    "gateway.config",
    "pydantic",
    "structlog",
    "cryptography",
)


@pytest.mark.parametrize(
    "args",
    [("--help",), ("premium", "--help"), ("phone", "--help"), ("conversation", "list", "--help")],
    ids=" ".join,
)
def test_help_imports_none_of_the_daemon(args: tuple[str, ...]) -> None:
    res, modules = imported(*args)
    assert res.returncode == 0 and res.stdout.startswith(" ".join(["usage: smsgw", *args[:-1]])), res
    assert sorted(m for m in modules if any(m == d or m.startswith(f"{d}.") for d in DAEMON)) == []


def test_status_imports_only_what_it_reads(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    Store.open(tmp_path / "state" / "smsgw.db").close()
    res, modules = imported("--config", str(config), "status", cwd=tmp_path)
    assert "daemon    not running" in res.stdout and res.returncode == 3, res
    # The daemon's side and the other commands' modules: none of them says anything `status` prints.
    heavy = {
        "gateway.smtp.intake",
        "gateway.housekeeping",
        "gateway.daemon",
        "gateway.events",
        "gateway.conversations",
        "gateway.premium",
        "billing_reports.writer",
        "gateway.cli.admin",
        "gateway.cli.billing",
    }
    assert heavy & modules == set()


def commands_of(parser: argparse.ArgumentParser) -> Commands:
    return next(a for a in parser._actions if isinstance(a, Commands))


def test_each_group_adds_the_commands_it_is_listed_with() -> None:
    # A command missing from its group's names would be "invalid choice" unless `--help` ran first.
    for index, (names, _module, _function) in enumerate(COMMANDS):
        commands = commands_of(build_parser())
        commands.add_group(names[0])
        assert list(commands._name_parser_map) == list(names), COMMANDS[index]


def test_a_command_adds_its_group_alone_and_help_lists_all_in_order() -> None:
    parser = build_parser()
    args, extras = parser.parse_known_args(["queue", "list"])
    assert (args.command, extras) == ("queue", [])
    commands = commands_of(parser)
    assert list(commands._name_parser_map) == ["status", "queue", "outbox", "send"]
    listed = [a.dest for a in commands._choices_actions]  # as `smsgw --help` lists them
    assert listed == [name for names, _, _ in COMMANDS for name in names]
    assert list(commands.choices) == listed
