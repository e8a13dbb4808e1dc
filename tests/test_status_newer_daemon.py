"""`smsgw status` of an installed smsgw older than the daemon running (its package rolled back, or
status run from another, older venv).

It said "running 0.2.42, pid N, installed 0.2.41: restart it (… `kill N` …)", as of an older daemon
after an upgrade: followed, the restart ran 0.2.41, which refused the database 0.2.42 had upgraded
(exit 3), and the gateway was down. `--json`'s daemon had no version there at all. Now it says the
daemon is newer and to install its version again, not to restart it. Real peers: another daemon's
lock held by a process of its own with its status file, the CLI as a process, a real SQLite file.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import gateway
from gateway.store.schema import SCHEMA_VERSION
from tests.test_account_show import CLI
from tests.test_process import smsgw
from tests.test_restart_words import no_unit as no_unit  # fixture
from tests.test_restart_words import older_daemon

INSTALLED = gateway.__version__
NEWER = ".".join([*INSTALLED.split(".")[:-1], str(int(INSTALLED.split(".")[-1]) + 1)])


def test_a_newer_daemon_on_a_newer_schema_is_not_to_be_restarted(cli: CLI, no_unit: None) -> None:
    cli.ok("account", "add", "beta")
    with closing(sqlite3.connect(cli.path.parent / "state" / "smsgw.db")) as conn, conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 2,))  # its migrations
    with older_daemon(cli, NEWER) as pid:
        text = smsgw(cli.path, "status")
        shown = smsgw(cli.path, "status", "--json")
    assert text.returncode == 1, text.stdout + text.stderr
    line = next(line for line in text.stdout.splitlines() if line.startswith("daemon "))
    assert line == (
        f"daemon    running {NEWER}, pid {pid}, newer than the installed {INSTALLED}: do not restart it"
        f" (a restart runs {INSTALLED}, which cannot open the database {NEWER} upgraded (schema"
        f" {SCHEMA_VERSION + 2}; {INSTALLED}'s is {SCHEMA_VERSION})); install {NEWER} again (or, to go"
        " back, restore the backup taken before its upgrade with this version's `smsgw restore`)"
    ), text.stdout
    assert ": restart it (" not in text.stdout and f"kill {pid}" not in text.stdout, text.stdout
    daemon = json.loads(shown.stdout)["daemon"]
    assert daemon["state"] == "running" and daemon["pid"] == pid, daemon
    assert daemon["version"] == NEWER and daemon["installed_version"] == INSTALLED, daemon


def test_a_newer_daemon_on_the_same_schema_is_not_to_be_restarted_either(cli: CLI, no_unit: None) -> None:
    cli.ok("account", "add", "beta")
    with older_daemon(cli, NEWER) as pid:
        text = smsgw(cli.path, "status")
    line = next(line for line in text.stdout.splitlines() if line.startswith("daemon "))
    assert line.startswith(
        f"daemon    running {NEWER}, pid {pid}, newer than the installed {INSTALLED}: do not restart it"
        f" (a restart runs {INSTALLED}, which would run in its place); install {NEWER} again"
    ), text.stdout
