"""`smsgw status` after a start killed right after its last migration committed.

The start file said the last migration begun ("upgrading the database from schema 72 to 75 (at 74)")
while the database was at 75: status printed "schema 75" under a start "cut short while upgrading".
The start file now says the schema the database has after each migration commits. A real process
upgrades a real SQLite file and exits as a killed start would (its start file left), then the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway.statusfile import read_starting, starting_words
from gateway.store.schema import SCHEMA_VERSION
from tests.conftest import free_port
from tests.test_long_start import OLD_SCHEMA, old_database, version
from tests.test_process import ROOT, smsgw, write_config

UPGRADE = """
import sys
from pathlib import Path
from gateway.startprogress import StartProgress
from gateway.store.db import Store
path = Path(sys.argv[1])
Store.open(path, progress=StartProgress(path, path.parent, every=5)).close()
"""  # and gone before `done`: a start killed between its upgrade and its readiness


def test_a_start_killed_after_its_upgrade_is_not_said_to_be_upgrading(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    path = old_database(config)
    ran = subprocess.run([sys.executable, "-c", UPGRADE, str(path)], cwd=ROOT, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert version(path) == SCHEMA_VERSION
    start = read_starting(path.parent)
    assert start is not None and start["phase"] == "upgrading" and start["from"] == OLD_SCHEMA, start
    words = f"opening the database, upgraded from schema {OLD_SCHEMA} to {SCHEMA_VERSION}"
    assert starting_words(start) == words
    # A caller that read the database's schema is believed over the file.
    assert starting_words(start, SCHEMA_VERSION - 1).endswith(
        f"to {SCHEMA_VERSION} (at {SCHEMA_VERSION - 1})"
    )
    res = smsgw(config, "status")
    assert "upgrading the database" not in res.stdout, res.stdout
    # Its own start upgraded the database, not a command after it: said as its start file says.
    assert f"was cut short while {words})" in res.stdout and " since)" not in res.stdout, res.stdout
    assert f"\nschema    {SCHEMA_VERSION}\n" in res.stdout, res.stdout
    report = json.loads(smsgw(config, "status", "--json").stdout)
    assert "upgrading the database" not in str(report["daemon"]["state"]), report
