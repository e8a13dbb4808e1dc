"""Why the daemon's stop left no clean-stop record, in the words of what happened (`startcheck.record_stop`).

`store.stop_not_recorded` tells an admin why the next start reads the whole file. A stop on a full
disk, whose closing checkpoint failed, said "the WAL is still beside the database (another process
has it open)", sending the admin after a process that did not exist; a file deleted under the daemon
was "replaced or a WAL fsync failed".

Real peers: a real SQLite file, on a small tmpfs that fills (mounting needs root: skipped elsewhere,
failed on CI, as tests/test_disk_full_wal.py does), the daemon's store with its checkpoint thread.
"""

from __future__ import annotations

import os
from pathlib import Path

from structlog.testing import capture_logs

from gateway.smtp.accept import accept
from gateway.startprogress import StartProgress
from gateway.store.db import Store
from tests.test_disk_full_wal import MB, fill, small_tmpfs
from tests.test_start_check import daemon_start, vouching
from tests.test_store import acceptance

NOW = 1_800_000_000.0


def not_recorded(logs: list[dict[str, object]]) -> list[str]:
    return [str(e["why"]) for e in logs if e["event"] == "store.stop_not_recorded"]


async def test_a_stop_whose_checkpoint_failed_for_a_full_disk_says_so(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with small_tmpfs(state, 4 * MB):
        db = state / "smsgw.db"
        with capture_logs() as logs:
            progress = StartProgress(db, state, every=5)
            s = Store.open(db, clock=lambda: NOW, group_fsync=True, progress=progress)
            s.db.serve()
            for i in range(40):  # pages the closing checkpoint must add to the database file
                await accept(s, acceptance([f"+4860100{i:04d}"], parts=3))
            fill(state / "filler", 0)
            s.close()
        failed = [e for e in logs if e["event"] == "store.checkpoint_failed"]
        assert failed and failed[0]["error"] == "database or disk is full", logs
        [why] = not_recorded(logs)
        assert why.startswith("the checkpoint at the stop failed (database or disk is full)"), why
        assert "another process" not in why
        assert not vouching(db)
        os.unlink(state / "filler")
        assert daemon_start(db, NOW + 60)[0]["event"] == "store.checked"  # the next start reads it


async def test_a_stop_after_the_file_was_deleted_says_it_was_deleted(tmp_path: Path) -> None:
    db = tmp_path / "smsgw.db"
    with capture_logs() as logs:
        s = Store.open(db, clock=lambda: NOW, group_fsync=True, progress=StartProgress(db, tmp_path, every=5))
        s.db.serve()
        await accept(s, acceptance(["+48601000001"]))
        os.unlink(db)
        assert not s.db.check_file()
        s.close()
    assert not_recorded(logs) == ["the file was deleted during the run"], logs
