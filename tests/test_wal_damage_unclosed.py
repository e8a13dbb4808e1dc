"""A WAL a process left without closing, or one still in use, at start (RELIABILITY.md F9): deleted or
emptied behind a live -shm it is refused; intact it opens with its commit; one in use is not judged;
a checkpoint that emptied it, or commits that changed nothing, are no loss; a clean close beside a
reader says so; a billing run between a kill and the restart keeps the WAL for the next start.
Split from test_wal_damage.py by subject (it was over 400 lines)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway.store import walcheck, walfile
from gateway.store.db import Store, StoreUnusable
from tests.test_process import ROOT, smsgw
from tests.test_wal_damage import ACCEPTED, crashed_state, starts_with

COMMIT_AND_EXIT = """
import os, sys, time
from pathlib import Path
from gateway.store.db import Store
store = Store.open(Path(sys.argv[1]))
with store.db.transaction() as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS kept (text TEXT)")
    conn.execute("INSERT INTO kept VALUES ('answered 250')")
os._exit(0)  # no close: SQLite never checkpoints
"""


def committed_without_close(db: Path) -> None:
    subprocess.run([sys.executable, "-c", COMMIT_AND_EXIT, str(db)], cwd=ROOT, check=True, timeout=60)


def test_a_wal_deleted_after_a_process_exited_without_closing_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state" / "smsgw.db"
    Store.open(db).close()
    committed_without_close(db)
    Path(f"{db}-wal").unlink()
    with pytest.raises(StoreUnusable, match=r"is missing.*accept-wal-loss"):
        Store.open(db)
    assert not Path(f"{db}-wal").exists()  # refused before SQLite made a new, empty one


def test_a_wal_emptied_behind_a_live_shm_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state" / "smsgw.db"
    Store.open(db).close()
    committed_without_close(db)
    os.truncate(f"{db}-wal", 0)
    with pytest.raises(StoreUnusable, match="holds 0 committed frame"):
        Store.open(db)


def test_an_intact_wal_of_a_process_that_exited_without_closing_opens_with_its_commit(tmp_path: Path) -> None:
    db = tmp_path / "state" / "smsgw.db"
    Store.open(db).close()
    committed_without_close(db)
    store = Store.open(db)
    assert store.db.conn.execute("SELECT text FROM kept").fetchall() == [("answered 250",)]
    store.close()
    assert not walcheck.flag_path(db).exists() and not Path(f"{db}-wal").exists()


def test_a_wal_in_use_is_not_judged(tmp_path: Path) -> None:
    """A CLI command beside the running daemon: its WAL is live (SQLite's locks say so), no leftover."""
    db = tmp_path / "state" / "smsgw.db"
    first = Store.open(db)
    with first.db.transaction() as conn:
        conn.execute("CREATE TABLE t (x)")
    wal = Path(f"{db}-wal")
    page = int.from_bytes(wal.read_bytes()[8:12], "big")
    damaged = walfile.WAL_HEADER + (walfile.FRAME_HEADER + page) + 30
    data = wal.read_bytes()
    try:
        wal.write_bytes(data[:damaged] + os.urandom(200) + data[damaged + 200 :])
        assert walcheck.damage(walfile.scan_wal(wal)) is not None  # judged, it would be refused
        walcheck.refuse_lost_commits(db, 0.0)
        assert not list(db.parent.glob("*.kept-*"))
    finally:
        wal.write_bytes(data)
        first.close()


def test_a_checkpoint_that_emptied_the_wal_before_a_crash_is_no_loss(tmp_path: Path) -> None:
    db = tmp_path / "state" / "smsgw.db"
    Store.open(db).close()
    code = COMMIT_AND_EXIT.replace(
        "os._exit(0)", "store.db.conn.execute('PRAGMA wal_checkpoint(TRUNCATE)')\nos._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(db)], cwd=ROOT, check=True, timeout=60)
    assert Path(f"{db}-wal").stat().st_size == 0 and walcheck.flag_path(db).exists()
    store = Store.open(db)
    assert store.db.conn.execute("SELECT text FROM kept").fetchall() == [("answered 250",)]
    store.close()


def test_a_crash_after_commits_that_changed_nothing_is_no_loss(tmp_path: Path) -> None:
    # After a clean stop the WAL is empty; a start's first commits may change nothing (a look that
    # found all in order) and write no frame. A kill -9 then left the flag over an empty WAL and the
    # next start refused to run ("it has no frame") until an admin's accept-wal-loss.
    db = tmp_path / "state" / "smsgw.db"
    Store.open(db).close()
    code = COMMIT_AND_EXIT.replace(
        "conn.execute(\"INSERT INTO kept VALUES ('answered 250')\")", "pass"
    ).replace('conn.execute("CREATE TABLE IF NOT EXISTS kept (text TEXT)")', "pass")
    assert "INSERT" not in code
    subprocess.run([sys.executable, "-c", code, str(db)], cwd=ROOT, check=True, timeout=60)
    assert Path(f"{db}-wal").stat().st_size == 0
    assert not walcheck.flag_path(db).exists()  # nothing in the WAL to keep
    Store.open(db).close()  # starts
    # The first commit that writes a frame still raises the flag: its loss is still refused.
    committed_without_close(db)
    assert walcheck.flag_path(db).exists()
    os.truncate(f"{db}-wal", 0)
    with pytest.raises(StoreUnusable, match="holds 0 committed frame"):
        Store.open(db)


def test_a_clean_close_beside_a_reader_of_this_process_leaves_no_flag(tmp_path: Path) -> None:
    """The reader (a thread's connection) closes last and SQLite deletes the WAL then, not at the
    store's close: the flag must not outlive the run that wrote it."""
    db = tmp_path / "state" / "smsgw.db"
    store = Store.open(db)
    with store.db.transaction() as conn:
        conn.execute("CREATE TABLE t (x)")
    reader = sqlite3.connect(db)
    reader.execute("SELECT COUNT(*) FROM t").fetchone()
    store.close()
    reader.close()
    assert not Path(f"{db}-wal").exists() and not walcheck.flag_path(db).exists()
    Store.open(db).close()


HOLD_OPEN = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT 1 FROM sqlite_master").fetchall()
print("open", flush=True)
sys.stdin.readline()
conn.close()
"""


def test_a_clean_close_beside_another_process_says_the_wal_was_checkpointed(tmp_path: Path) -> None:
    """`smsgw backup` (a plain SQLite connection) still reads when the daemon stops; it closes last,
    and SQLite deletes the WAL then: the start after that is no crash's."""
    db = tmp_path / "state" / "smsgw.db"
    store = Store.open(db)
    with store.db.transaction() as conn:
        conn.execute("CREATE TABLE t (x)")
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "open\n"
        store.close()
        assert walcheck.CHECKPOINTED in walcheck.flag_path(db).read_text()
        holder.stdin.write("\n")
        holder.stdin.close()
        assert holder.wait(30) == 0
    assert not Path(f"{db}-wal").exists()
    Store.open(db).close()


async def test_a_billing_run_between_a_kill_and_the_restart_keeps_the_wal_for_it(tmp_path: Path) -> None:
    # `smsgw billing run` after a kill and before the restart: its store takes the WAL in and, closing
    # last, removes the flag with it; the start that follows has every mail.
    config, smtp_port, _ = await crashed_state(tmp_path)
    month = Month.containing(time.time(), ZoneInfo("Europe/Warsaw"))  # the config's default zone
    billed = smsgw(config, "billing", "run", "--month", str(month))
    assert billed.returncode == 0, billed.stderr
    assert "summary of" in billed.stdout, billed.stdout
    await starts_with(config, smtp_port, ACCEPTED)
    assert not walcheck.flag_path(tmp_path / "state" / "smsgw.db").exists()


async def test_the_billing_reader_on_a_killed_daemons_state_leaves_the_wal_to_the_next_start(
    tmp_path: Path,
) -> None:
    # The month's files read on the billing connection alone (`write_month`, as the daemon's job and
    # `billing run` call it): closed last, a connection that could write checkpointed and deleted
    # the WAL and left its flag, and the start was refused with the WAL "missing".
    config, smtp_port, _ = await crashed_state(tmp_path)
    state = tmp_path / "state"
    tz = ZoneInfo("Europe/Warsaw")
    files = write_month(state / "smsgw.db", state, Month.containing(time.time(), tz), tz)
    assert files.summary is not None
    assert (state / "smsgw.db-wal").stat().st_size > 0  # still the killed daemon's, for its start
    await starts_with(config, smtp_port, ACCEPTED)
