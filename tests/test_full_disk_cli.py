"""A command or a start on a full state disk says how much room is left and what to do, not only
SQLite's "database or disk is full" (systemd restarted the daemon, each start said just that)."""

from __future__ import annotations

from pathlib import Path

from gateway.store.db import Store
from tests.conftest import config_text, free_port
from tests.test_cli_errors import last_line, one_line, run, write_config
from tests.test_disk_full_wal import fill, small_tmpfs


def test_a_command_and_a_start_on_a_full_state_disk_say_the_room_left(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with small_tmpfs(state, 4 * 1024 * 1024):
        config = write_config(tmp_path, config_text(tmp_path, smsc_port=free_port()))
        store = Store.open(state / "smsgw.db")
        store.accounts.add_account("acme", sender="+48100200300")
        store.close()
        fill(state / "filler", 0)
        added = run(config, "user", "add", "anna@acme.example", "--account", "acme")
        started = run(config, "run")
    assert added.returncode != 0
    said = one_line(added)
    assert "bytes free on the filesystem of" in said, said
    assert started.returncode != 0
    line = last_line(started)
    assert "bytes free on the filesystem of" in line and "nothing accepted is lost" in line, line
