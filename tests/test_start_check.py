"""The start's whole-file check (`PRAGMA quick_check`) where it can find something, and only there.

Every start read the whole database: 0.43 s with 100,000 SMS queued, 8-13 s on a year of traffic,
with mail unanswered and the queue idle meanwhile, at every restart for a config change. A file the
daemon itself stopped cleanly, unchanged since and checked within a week, is not read again; a crash,
a file changed or replaced while stopped, an upgrade or a week since the last check still are
(`gateway.store.startcheck`), and the start's log says which and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.smtp.accept import accept
from gateway.startprogress import StartProgress
from gateway.store.db import Store, StoreError
from gateway.supervisor import Supervisor
from tests.conftest import DOMAIN, free_port, mail, send_blocking
from tests.test_process import smsgw, start_daemon, write_config
from tests.test_start_integrity import damage_table_root
from tests.test_store import acceptance
from tests.test_store_damage import stale_index_entry

DAY = 86400.0


def stop_record(db: Path) -> Path:
    """What the daemon's clean stop leaves beside the database (`gateway.store.startcheck`)."""
    return db.with_name(f"{db.name}.stopped")


def vouching(db: Path) -> bool:
    """Whether a record of a clean stop is beside the database (one that could not vouch says only why)."""
    record = stop_record(db)
    return record.exists() and "not_recorded" not in record.read_text()


def logged(config: Path, event: str) -> list[dict[str, Any]]:
    lines = (config.parent / "daemon.log").read_text().splitlines()
    found = [json.loads(line) for line in lines if line.startswith("{")]
    return [e for e in found if e.get("event") == event]


async def run_and_stop(
    config: Path,
    smtp_port: int,
    text: str | None,
    how: signal.Signals,
    during: Callable[[], object] | None = None,
) -> None:
    """A start of `smsgw run`, a mail `text` accepted (no SMSC reachable: it stays queued), `during`,
    then `how`."""
    proc = await start_daemon(config, smtp_port)
    try:
        if text is not None:
            sent = await asyncio.to_thread(
                send_blocking, smtp_port, mail(f"601123456@{DOMAIN}", text), [f"601123456@{DOMAIN}"]
            )
            assert sent.error is None
        if during is not None:
            await asyncio.to_thread(during)
    finally:
        proc.send_signal(how)
        code = proc.wait(timeout=30)
    assert code == (0 if how == signal.SIGTERM else -signal.SIGKILL)


async def test_a_clean_stop_lets_the_next_start_skip_the_whole_file_check(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    await run_and_stop(config, smtp_port, "first", signal.SIGTERM)
    await run_and_stop(config, smtp_port, "second", signal.SIGTERM)  # the file existed: checked or not
    await run_and_stop(config, smtp_port, "third", signal.SIGTERM)
    skipped = logged(config, "store.check_skipped")
    assert len(skipped) == 3, logged(config, "store.checked")
    assert "a new database" in skipped[0]["why"], skipped  # the first start created it
    assert all("stopped cleanly and unchanged since" in e["why"] for e in skipped[1:]), skipped
    assert not logged(config, "store.checking") and not logged(config, "store.checked")
    assert stop_record(db).exists()  # the last stop's, for the next start
    with closing(sqlite3.connect(db)) as conn:  # nothing was lost for it
        assert conn.execute("SELECT count(*) FROM parts WHERE state = 'queued'").fetchone()[0] == 3


async def test_a_damaged_page_after_a_crash_is_still_refused_at_start(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    await run_and_stop(config, smtp_port, "before", signal.SIGTERM)
    assert stop_record(db).exists()
    await run_and_stop(config, smtp_port, "killed", signal.SIGKILL)  # kill -9: no clean stop
    assert not stop_record(db).exists()  # taken at its start: nothing vouches for the file
    damage_table_root(db, "emails")
    res = await asyncio.to_thread(smsgw, config, "run")
    assert res.returncode == 3, res.stderr
    assert '"event":"store.checking"' in res.stderr  # the whole file read, and refused
    # SQLite raised instead of answering: said as the check's result too, with why it ran.
    assert '"result":"error: database disk image is malformed","event":"store.checked"' in res.stderr
    assert f"database {db} cannot be read (database disk image is malformed)" in res.stderr, res.stderr


async def test_a_file_changed_while_stopped_is_checked_at_start(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    await run_and_stop(config, smtp_port, "first", signal.SIGTERM)
    await run_and_stop(config, smtp_port, "second", signal.SIGTERM)
    with closing(sqlite3.connect(db)) as conn:  # another program writes it while the daemon is stopped
        conn.execute("UPDATE emails SET text = 'changed' WHERE id = 1")
        conn.commit()
    await run_and_stop(config, smtp_port, "third", signal.SIGTERM)
    checked = logged(config, "store.checked")
    assert len(checked) == 1 and "changed since the last stop" in checked[0]["why"], checked
    assert "an older smsgw" in checked[0]["why"]  # a run of 0.2.25 in between changes it too
    assert checked[0]["result"] == "ok"


async def test_the_start_tells_a_crash_from_a_run_that_left_no_record(tmp_path: Path) -> None:
    # smsgw 0.2.25 writes no record at its clean stop, and leaves no WAL flag then; kill -9 leaves one.
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    flag = db.with_name(f"{db.name}.wal-in-use")
    await run_and_stop(config, smtp_port, "first", signal.SIGTERM)
    stop_record(db).unlink()  # the clean stop of a version that writes none
    assert not flag.exists()
    await run_and_stop(config, smtp_port, "second", signal.SIGTERM)
    await run_and_stop(config, smtp_port, "killed", signal.SIGKILL)
    assert flag.exists() and not stop_record(db).exists()
    await run_and_stop(config, smtp_port, "after", signal.SIGTERM)
    why = [e["why"] for e in logged(config, "store.checked")]
    assert len(why) == 2, why
    assert why[0].startswith("the last run left no record"), why
    assert "an older smsgw" in why[0] and "crashed" not in why[0]
    assert why[1] == "no clean stop recorded (the last run crashed, was killed or lost power)"


async def test_a_page_damaged_while_stopped_with_its_mtime_put_back_is_refused(tmp_path: Path) -> None:
    # A program that writes into the file and sets its time back still changes its ctime.
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    await run_and_stop(config, smtp_port, "first", signal.SIGTERM)
    await run_and_stop(config, smtp_port, "second", signal.SIGTERM)
    before = os.stat(db)
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        page_size, pages = conn.execute("PRAGMA page_size").fetchone()[0], conn.execute("PRAGMA page_count")
        last = pages.fetchone()[0]
    with db.open("r+b") as f:  # the free-space pointer of the last page, as a torn write leaves it
        f.seek((last - 1) * page_size + 1)
        f.write(b"\x00\x01")
    os.utime(db, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(db).st_size == before.st_size and os.stat(db).st_mtime_ns == before.st_mtime_ns
    res = await asyncio.to_thread(smsgw, config, "run")
    assert res.returncode == 3, res.stderr
    assert f"database {db} failed its integrity check" in res.stderr, res.stderr


# ---- the decision, on the daemon's own open and close of a real file (`StartProgress`: the daemon's) ----


def daemon_start(db: Path, now: float) -> list[dict[str, Any]]:
    """The daemon's open (checked or not, migrated) and clean close of `db` at `now`; its store.* lines."""
    with capture_logs() as logs:
        progress = StartProgress(db, db.parent, every=5)
        Store.open(db, clock=lambda: now, group_fsync=True, progress=progress).close()
    said = ("store.checked", "store.check_skipped", "store.stop_not_recorded")
    return [e for e in logs if e["event"] in said]


def test_the_whole_file_is_read_at_least_once_a_week(tmp_path: Path) -> None:
    db, now = tmp_path / "smsgw.db", 1_800_000_000.0
    daemon_start(db, now)  # created, clean stop
    assert [e["event"] for e in daemon_start(db, now + 6 * DAY)] == ["store.check_skipped"]
    # Skipped starts do not count as checks: the week runs from the last check that passed.
    week = daemon_start(db, now + 7 * DAY)
    assert [e["event"] for e in week] == ["store.checked"] and "last checked 7.0 days ago" in week[0]["why"]
    assert [e["event"] for e in daemon_start(db, now + 8 * DAY)] == ["store.check_skipped"]


def test_an_upgrade_and_a_wal_written_by_another_program_are_checked(tmp_path: Path) -> None:
    db, now = tmp_path / "smsgw.db", 1_800_000_000.0
    daemon_start(db, now)
    record = stop_record(db)
    record.write_text(record.read_text().replace("version = ", "version = 0.0.1-"))  # an older smsgw's
    upgraded = daemon_start(db, now + 60)
    assert upgraded[0]["event"] == "store.checked" and "an upgrade" in upgraded[0]["why"], upgraded
    assert daemon_start(db, now + 120)[0]["event"] == "store.check_skipped"
    # Another program commits into the WAL and ends without closing: the file itself is as it was.
    before = os.stat(db)
    script = (
        "import sqlite3, os, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
        " c.execute('PRAGMA journal_mode=WAL');"
        " c.execute('UPDATE settings_generation SET value = value + 1'); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script, str(db)], check=True)
    assert os.stat(db).st_mtime_ns == before.st_mtime_ns and Path(f"{db}-wal").stat().st_size
    walled = daemon_start(db, now + 180)
    assert walled[0]["event"] == "store.checked" and "a WAL with frames" in walled[0]["why"], walled


async def test_a_run_whose_write_met_damage_leaves_no_clean_stop(tmp_path: Path) -> None:
    db, now = tmp_path / "smsgw.db", 1_800_000_000.0
    s = Store.open(db, group_fsync=True)
    s.db.serve()
    await accept(s, acceptance(["+48601000001", "+48601000002"]))
    s.close()
    stale_index_entry(db)  # SQLite answers "malformed" to a write that reaches it
    daemon_start(db, now)
    assert stop_record(db).exists()
    with capture_logs() as logs:
        s = Store.open(db, clock=lambda: now, group_fsync=True, progress=StartProgress(db, tmp_path, every=5))
        s.db.serve()
        sql = "SELECT id, text FROM messages WHERE state = 'queued'"
        with pytest.raises(sqlite3.DatabaseError, match="malformed"):
            await s.write(lambda: s.db.conn.execute(sql).fetchall())
        s.close()
    said = [e for e in logs if e["event"] == "store.stop_not_recorded"]
    assert said and "a write failed during the run" in said[0]["why"], logs
    assert not vouching(db)
    assert daemon_start(db, now + 60)[0]["event"] == "store.checked"


async def test_a_page_damaged_in_place_while_the_daemon_runs_is_refused_at_the_next_start(
    tmp_path: Path,
) -> None:
    # A copy over the file in place, `dd conv=notrunc`, a restore tool: the stop's stat took the
    # damage in as the daemon's own, and the next start skipped the check and served the file.
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    await run_and_stop(config, smtp_port, "first", signal.SIGTERM)
    # No mail in this run: its closing checkpoint has no copy of the page to write over the damage.
    await run_and_stop(config, smtp_port, None, signal.SIGTERM, lambda: damage_table_root(db, "emails"))
    said = logged(config, "store.stop_not_recorded")
    assert said and "written during the run by another program" in said[-1]["why"], said
    assert not vouching(db)
    res = await asyncio.to_thread(smsgw, config, "run")
    assert res.returncode == 3, res.stderr
    assert f"database {db} failed its integrity check" in res.stderr, res.stderr


def rewrite_in_place(db: Path) -> None:
    """One byte of the file written back as it was: its content the same, its stat not (as any
    program's write into the file leaves it)."""
    with db.open("r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(byte)


async def serve_with_checkpoints(
    db: Path, now: float, meanwhile: Callable[[], object]
) -> list[dict[str, Any]]:
    """The daemon's open, mail accepted with the WAL checkpointed after every write (its own writes
    of the file while serving), `meanwhile` between two of them, and its clean close."""
    progress = StartProgress(db, db.parent, every=5)
    with capture_logs() as logs:
        s = Store.open(db, clock=lambda: now, group_fsync=True, progress=progress)
        s.db.serve()
        s.db.limit_wal(1)
        for n in range(2):
            if n:
                meanwhile()
            await accept(s, acceptance([f"+4860100000{n}"]))
            while (task := s.db._checkpoint_task) is not None:
                await task
        s.close()
    assert len([e for e in logs if e["event"] == "store.checkpointed"]) >= 2, logs
    return [e for e in logs if e["event"] == "store.stop_not_recorded"]


async def test_the_daemons_own_checkpoints_keep_the_clean_stop_another_programs_write_does_not(
    tmp_path: Path,
) -> None:
    db, now = tmp_path / "smsgw.db", 1_800_000_000.0
    daemon_start(db, now)
    assert await serve_with_checkpoints(db, now, lambda: None) == []
    assert stop_record(db).exists()
    assert daemon_start(db, now + 60)[0]["event"] == "store.check_skipped"
    # Written by another program between two of the daemon's checkpoints: the later one's stat
    # would have vouched for it.
    said = await serve_with_checkpoints(db, now + 120, lambda: rewrite_in_place(db))
    assert said and "written during the run by another program" in said[0]["why"], said
    assert not vouching(db)
    assert daemon_start(db, now + 180)[0]["event"] == "store.checked"


async def test_a_file_written_between_the_starts_look_and_its_open_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, now = tmp_path / "smsgw.db", 1_800_000_000.0
    s = Store.open(db, group_fsync=True)
    s.db.serve()
    await accept(s, acceptance(["+48601000001", "+48601000002"]))
    s.close()
    daemon_start(db, now)
    assert stop_record(db).exists()
    from gateway.store import walcheck

    refuse = walcheck.refuse_lost_commits

    def damaged_meanwhile(path: Path, at: float) -> None:  # runs between the record's look and the open
        damage_table_root(path, "emails")
        refuse(path, at)

    monkeypatch.setattr(walcheck, "refuse_lost_commits", damaged_meanwhile)
    with capture_logs() as logs, pytest.raises(StoreError, match=r"cannot be read|integrity check"):
        progress = StartProgress(db, tmp_path, every=5)
        Store.open(db, clock=lambda: now + 60, group_fsync=True, progress=progress)
    checked = [e for e in logs if e["event"] == "store.checked"]
    assert checked and "while this start opened it" in checked[0]["why"], logs


async def test_a_read_meeting_damage_in_a_supervised_worker_leaves_no_clean_stop(tmp_path: Path) -> None:
    db, now = tmp_path / "smsgw.db", 1_800_000_000.0
    s = Store.open(db, group_fsync=True)
    s.db.serve()
    await accept(s, acceptance(["+48601000001", "+48601000002"]))
    s.close()
    # The daemon's open and close without its checkpoint thread: only the read tells of the damage.
    s = Store.open(db, clock=lambda: now, progress=StartProgress(db, tmp_path, every=5))
    damage_table_root(db, "emails")

    async def reader() -> None:  # a read outside the store's write path, on a reader's connection
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("SELECT * FROM emails").fetchall()

    supervisor = Supervisor()
    worker = supervisor.add("reader", reader)
    running = asyncio.create_task(supervisor.run())
    while not worker.restarts:
        await asyncio.sleep(0.01)
    supervisor.stopping = True
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    with capture_logs() as logs:
        s.close()
    said = [e for e in logs if e["event"] == "store.stop_not_recorded"]
    assert said and "a read met damage during the run" in said[0]["why"], logs
    assert not vouching(db)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_record_checked_at_no_real_time_is_unreadable(tmp_path: Path, value: str) -> None:
    # float() takes them, and nan passed the week's comparison for ever (each stop wrote it back).
    db, now = tmp_path / "smsgw.db", 1_800_000_000.0
    daemon_start(db, now)
    record = stop_record(db)
    lines = record.read_text().splitlines()
    record.write_text("".join(f"checked = {value}\n" if x.startswith("checked") else x + "\n" for x in lines))
    said = daemon_start(db, now + 30 * DAY)
    assert said[0]["event"] == "store.checked" and "unreadable" in said[0]["why"], said
