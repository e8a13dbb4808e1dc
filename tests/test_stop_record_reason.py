"""A start names the reason its last stop gave for not vouching for the file (`startcheck.record_stop`).

A stop that logged `store.stop_not_recorded` "the WAL is still beside the database (another process
has it open)" was followed by a start whose `store.checked` said "the last run left no record (a
first start with this version, an older smsgw, or a command)": a guess, where the stop had said
why. The real daemon as a process, a real SQLite file held open by another process over the stop.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port
from tests.test_process import write_config
from tests.test_start_check import logged, run_and_stop, stop_record

HOLD = (
    "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
    " c.execute('SELECT count(*) FROM messages').fetchone(); print('open', flush=True); sys.stdin.read()"
)


async def test_a_start_after_a_stop_that_left_the_wal_names_that_stops_reason(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    holder: list[subprocess.Popen[str]] = []

    def hold() -> None:  # an sqlite3 shell left open on the database, as the daemon stops
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        holder.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "open\n"

    try:
        await run_and_stop(config, smtp_port, "first", signal.SIGTERM, hold)
    finally:
        for proc in holder:
            proc.communicate(timeout=30)  # its stdin closed: it ends, closing the database
    [stopped] = logged(config, "store.stop_not_recorded")
    why = "the WAL is still beside the database (another process has it open)"
    assert stopped["why"] == why, stopped
    assert "not_recorded" in stop_record(db).read_text()  # only why: it vouches for nothing
    await run_and_stop(config, smtp_port, None, signal.SIGTERM)
    checked = logged(config, "store.checked")
    assert [e["why"] for e in checked] == [f"the last stop could not record a clean stop: {why}"], checked
