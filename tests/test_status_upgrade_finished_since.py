"""`smsgw status` after a start killed mid-upgrade whose upgrade a command then finished.

Every command upgrades an older database it opens (`smsgw account list` says "upgraded the database
... from schema 72 to 75"), and the killed start's file stays. Status went on saying "the start of
pid N was cut short while upgrading the database from schema 72 to 75" above "schema 75": an upgrade
cut short that was done. Real processes: the daemon killed, the CLI, a real SQLite file.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from gateway.store.schema import SCHEMA_VERSION
from tests.conftest import free_port
from tests.test_long_start import (
    OLD_SCHEMA,
    daemon,
    events,
    old_database,
    release,
    until,
    version,
    write_lock,
)
from tests.test_process import smsgw, write_config


def test_status_after_a_command_finished_the_upgrade_says_so_not_that_it_was_cut_short(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    path = old_database(config)
    lock = write_lock(path)  # its first migration waits for it: killed there, at no moment of chance
    try:
        with daemon(config, dict(os.environ)) as proc:
            until(lambda: any(e["event"] == "store.lock_wait" for e in events(config)), "the daemon waits")
            assert json.loads((path.parent / "starting.json").read_text())["phase"] == "upgrading"
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
    finally:
        release(lock)
    assert version(path) == OLD_SCHEMA
    res = smsgw(config, "account", "list")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"from schema version {OLD_SCHEMA} to {SCHEMA_VERSION}" in res.stdout + res.stderr, res.stderr
    assert version(path) == SCHEMA_VERSION
    res = smsgw(config, "status")
    assert "cut short while upgrading" not in res.stdout, res.stdout
    said = f"the start of pid {proc.pid}"
    assert (
        f"{said}, " in res.stdout
        and f"the database was upgraded to schema {SCHEMA_VERSION} since" in res.stdout
    )
    assert f"\nschema    {SCHEMA_VERSION}\n" in res.stdout, res.stdout
    report = json.loads(smsgw(config, "status", "--json").stdout)
    assert "cut short while" not in report["daemon"]["state"], report
