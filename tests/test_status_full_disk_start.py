"""`smsgw status` of a daemon that holds the state directory's lock and has written no status file,
on a nearly full disk: it says the disk, not only "starting". A daemon upgraded and started on a
full disk cannot write its first status file (its stop removed the last), refuses every mail with
452, and status said "starting (pid N): it has not written its status yet" for as long as it ran."""

from __future__ import annotations

import json
from pathlib import Path

from gateway import statelock
from gateway.store.db import Store
from tests.conftest import config_text, free_port
from tests.test_cli_errors import run, write_config
from tests.test_disk_full_wal import fill, small_tmpfs


def test_status_of_a_daemon_without_a_status_file_on_a_full_disk_names_the_disk(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = write_config(tmp_path, config_text(tmp_path, smsc_port=free_port()))
    with small_tmpfs(state, 4 * 1024 * 1024):
        # This process stands for the daemon: its lock, its database open (its -wal and -shm kept),
        # and no status file.
        store = Store.open(state / "smsgw.db")
        with statelock.held(state):
            fill(state / "filler", 0)
            shown = run(config, "status")
            as_json = run(config, "status", "--json")
        store.close()
    assert shown.returncode == 1, shown.stderr
    line = next(line for line in shown.stdout.splitlines() if line.startswith("daemon"))
    assert "starting (pid" in line, shown.stdout
    assert "nearly full" in line and "free of" in line and "(452)" in line, shown.stdout
    assert as_json.returncode == 1, as_json.stderr
    state_said = json.loads(as_json.stdout)["daemon"]["state"]
    assert state_said.startswith("starting (pid") and "nearly full" in state_said, state_said


def test_status_of_a_starting_daemon_with_room_says_only_starting(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = write_config(tmp_path, config_text(tmp_path, smsc_port=free_port()))
    with small_tmpfs(state, 16 * 1024 * 1024):
        Store.open(state / "smsgw.db").close()
        with statelock.held(state):
            shown = run(config, "status")
    line = next(line for line in shown.stdout.splitlines() if line.startswith("daemon"))
    assert "starting (pid" in line and "full" not in line, shown.stdout
