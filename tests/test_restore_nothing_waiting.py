"""`smsgw restore` of a backup that holds no SMS to go does not say SMS go out again.

Its last line said "start the daemon (…); SMS queued in the backup go out again" of a backup with
none queued: an admin read that something would be sent twice. The CLI as processes, real SQLite
files: the database made, backed up, restored over.
"""

from __future__ import annotations

from pathlib import Path

from gateway.store.db import Store
from tests.conftest import free_port
from tests.test_process import smsgw, write_config


def test_a_backup_with_no_sms_waiting_says_none_waits(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    (tmp_path / "state").mkdir()
    Store.open(tmp_path / "state" / "smsgw.db").close()  # as the daemon's first start leaves it
    (tmp_path / "backups").mkdir()
    res = smsgw(config, "backup", str(tmp_path / "backups"))
    assert res.returncode == 0, res.stdout + res.stderr
    [backup] = [p for p in (tmp_path / "backups").iterdir() if p.suffix == ".db"]
    res = smsgw(config, "restore", str(backup))
    assert res.returncode == 0, res.stdout + res.stderr
    last = res.stdout.splitlines()[-1]
    assert last.startswith("start the daemon (") and last.endswith("; no SMS waits to go out in it"), (
        res.stdout
    )
    assert "go out again" not in res.stdout, res.stdout
