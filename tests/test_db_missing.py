"""A database that is gone never comes back as a new, empty one (RELIABILITY.md F9).

`smsgw.db` deleted under the running daemon (a mistaken rm, a restore in the wrong order): the
daemon stopped with status 1 "so that a restart opens the file in place", but there was none, and
the restart systemd makes 5 s later created an empty database: queued SMS, opt-outs (a number that
sent STOP got SMS again), accounts and billing state gone. Now the daemon copies what its connection
still reads of the deleted file beside it before it stops, and no start creates a database where
its marker says one existed: it exits 3 (not restarted) and says how to restore or start afresh.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.store.db import Store, StoreUnusable
from tests.conftest import DOMAIN, free_port, mail, mode, send_blocking, unwritable
from tests.test_process import CLI, ROOT, smsgw, start_daemon, write_config

NUMBER = "601123456"
STOPPED = "+48601999888"


def rescued_copies(state: Path) -> list[Path]:
    return sorted(state.glob("smsgw.db.rescued-*"))


def run_to_exit(config: Path, timeout: float = 30) -> tuple[int, str]:
    """`smsgw run` that is expected to refuse: its status and output; one that serves is stopped."""
    log = config.parent / "refused.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*CLI, "--config", str(config), "run"], cwd=ROOT, stdout=out, stderr=out)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        pytest.fail(f"`smsgw run` started instead of refusing: {log.read_text()[-2000:]}")
    return code, log.read_text()


async def delete_under_the_daemon(tmp_path: Path) -> tuple[Path, int]:
    """A daemon with a queued SMS (nothing listens on its SMSC port) and an opt-out, whose database
    is then deleted; its config and SMTP port, once it has exited."""
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    proc = await start_daemon(config, smtp_port)
    try:
        rcpt = f"{NUMBER}@{DOMAIN}"
        res = await asyncio.to_thread(send_blocking, smtp_port, mail(rcpt, "Still queued"), [rcpt])
        assert res.error is None
        added = await asyncio.to_thread(smsgw, config, "optout", "add", STOPPED)
        assert added.returncode == 0, added.stderr
        (tmp_path / "state" / "smsgw.db").unlink()
        assert await asyncio.to_thread(proc.wait, 30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return config, smtp_port


def queued_texts(db: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            "SELECT m.text, p.state FROM messages m JOIN parts p ON p.message_id = m.id ORDER BY m.id"
        ).fetchall()


def optouts(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [r[0] for r in conn.execute("SELECT number FROM optouts")]


async def test_a_database_deleted_under_the_daemon_is_rescued_and_never_made_anew(tmp_path: Path) -> None:
    config, _port = await delete_under_the_daemon(tmp_path)
    state = tmp_path / "state"
    db = state / "smsgw.db"
    copies = rescued_copies(state)
    assert len(copies) == 1, sorted(p.name for p in state.iterdir())
    rescued = copies[0]
    assert mode(rescued) == 0o600
    assert queued_texts(rescued) == [("Still queued", "queued")]
    assert optouts(rescued) == [STOPPED]
    log = (tmp_path / "daemon.log").read_text()
    assert '"store.rescued"' in log and str(rescued) in log
    # The restart systemd makes: refused with the status it does not restart, nothing created.
    code, out = run_to_exit(config)
    assert code == 3, out
    assert f"database {db} is missing" in out and f"the rescued copy {rescued}" in out, out
    assert f"remove {db}.id" in out, out
    assert not db.exists()
    # An admin command that would have created it is refused the same way.
    res = smsgw(config, "account", "add", "other")
    assert res.returncode == 3 and f"database {db} is missing" in res.stderr, res.stderr
    # One that only reads names what to restore, not "is state_dir right?".
    res = smsgw(config, "queue", "list")
    assert res.returncode == 3 and f"the rescued copy {rescued}" in res.stderr, res.stderr
    assert not db.exists()


async def test_the_rescued_copy_restored_starts_with_the_queued_sms_and_the_opt_out(tmp_path: Path) -> None:
    config, smtp_port = await delete_under_the_daemon(tmp_path)
    state = tmp_path / "state"
    db = state / "smsgw.db"
    (rescued,) = rescued_copies(state)
    for leftover in (Path(f"{db}-wal"), Path(f"{db}-shm")):  # the README's restore steps
        leftover.unlink(missing_ok=True)
    shutil.copy(rescued, db)
    os.chmod(db, 0o600)
    proc = await start_daemon(config, smtp_port)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0
    assert queued_texts(db) == [("Still queued", "queued")]
    assert optouts(db) == [STOPPED]


def test_a_state_dir_with_the_marker_but_no_database_is_refused(tmp_path: Path) -> None:
    # The state volume that did not mount, the file removed while the daemon was stopped.
    config = write_config(tmp_path, free_port(), free_port())
    db = tmp_path / "state" / "smsgw.db"
    Store.open(db).close()
    db.unlink()
    code, out = run_to_exit(config)
    assert code == 3, out
    assert f"database {db} is missing" in out and f"remove {db}.id" in out, out
    assert not db.exists()


def test_an_empty_database_beside_its_marker_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "smsgw.db"
    Store.open(db).close()
    db.write_bytes(b"")
    with pytest.raises(StoreUnusable, match="is empty"):
        Store.open(db)
    assert db.stat().st_size == 0


async def test_a_fresh_state_dir_starts_and_gets_its_marker(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    proc = await start_daemon(config, smtp_port)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0
    db = tmp_path / "state" / "smsgw.db"
    marker = tmp_path / "state" / "smsgw.db.id"
    assert db.stat().st_size > 0
    assert mode(marker) == 0o600 and "id = " in marker.read_text()


def test_a_database_from_before_markers_gets_one_at_open(tmp_path: Path) -> None:
    db = tmp_path / "smsgw.db"
    Store.open(db).close()
    marker = tmp_path / "smsgw.db.id"
    marker.unlink()
    Store.open(db).close()
    assert "marked = " in marker.read_text()


def test_a_rescue_that_cannot_be_written_is_said_and_the_wal_kept_aside(tmp_path: Path) -> None:
    db = tmp_path / "state" / "smsgw.db"
    store = Store.open(db, group_fsync=True)
    store.policy.add_optout(STOPPED, word=None, source="admin")
    db.unlink()
    with capture_logs() as logs, unwritable(db.parent):
        assert not store.db.check_file()
    events = [e["event"] for e in logs]
    assert "store.rescue_failed" in events and "store.file_replaced" in events, events
    assert rescued_copies(db.parent) == []
    assert "the copy of it failed" in str(store.db.replaced_error())
    store.close()
    (kept,) = db.parent.glob("smsgw.db-wal.unrescued-*")
    assert kept.stat().st_size > 0
    assert not db.exists()


async def test_backup_of_a_lost_database_names_what_to_restore(tmp_path: Path) -> None:
    # `smsgw backup` said "no database at … (is state_dir right?)" where the other commands name
    # the rescued copy and the marker.
    config, _port = await delete_under_the_daemon(tmp_path)
    res = smsgw(config, "backup", str(tmp_path / "copy.db"))
    assert res.returncode == 3 and "is missing, but a database existed there" in res.stderr, res.stderr
    assert not (tmp_path / "copy.db").exists()


async def test_the_rescue_copy_feeds_the_watchdog_while_it_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The copy ran on the event loop in one step: for a database of some GB it outlasted WatchdogSec,
    # and systemd's kill took the last reference to the deleted file with it. It goes in steps now,
    # each telling the watchdog. A small database stands for a large one: the step is made tiny.
    from gateway.store import rescue
    from tests.test_supervision import notify_socket

    db = tmp_path / "smsgw.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE t (b BLOB)")
        conn.executemany("INSERT INTO t VALUES (randomblob(4000))", [()] * 50)
        conn.commit()
        db.unlink()  # deleted under the open connection
        monkeypatch.setattr(rescue, "RESCUE_STEP_PAGES", 5)
        path = tmp_path / "notify"
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        async with notify_socket(path) as received:
            copy = rescue.rescue_copy(conn, db, 0.0)
            await asyncio.sleep(0.2)
    assert received.count("WATCHDOG=1") >= 10, received
    with closing(sqlite3.connect(copy)) as rescued:
        assert rescued.execute("SELECT COUNT(*) FROM t").fetchone() == (50,)
