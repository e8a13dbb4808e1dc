"""An upgrade whose index does not fit twice in the state directory's free space is refused before
anything commits, naming the room it needs: with the kept size free and not twice it, migration 67
committed into the WAL, the first checkpoint filled the disk, and every mail got 452 after it."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from gateway.store import upgraderoom
from gateway.store.db import Store
from gateway.store.schema import SCHEMA_VERSION
from tests.conftest import config_text, free_port
from tests.test_cli_errors import last_line, run, write_config
from tests.test_disk_full_wal import fill, small_tmpfs
from tests.test_store import undo_migration_66, undo_migration_67, undo_migration_68, undo_migration_76

PARTS = 150_000  # parts_sent of these takes some 4.5 MB (30 bytes an entry)
MB = 1024 * 1024


def _database_at_66(path: Path) -> None:
    """A database at schema 66 (before parts_sent) holding PARTS sent parts."""
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        undo_migration_67(conn)
        conn.execute("UPDATE schema_version SET version = 66")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.executemany(
            "INSERT INTO parts(id, message_id, seq, state, next_attempt_at, expires_at, destination, source,"
            " data_coding, payload, udh, text, link, smsc_id, submitted_at)"
            " VALUES (?, ?, 1, 'delivered', 0, 0, ?, '+48100200300', 0, x'00', x'', 'hi', 'main', ?, ?)",
            (
                (i, i, f"+48{600000000 + i * 7919 % 299999999}", f"{i:08x}", 1.7e9 + i)
                for i in range(1, PARTS + 1)
            ),
        )
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _schema(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT version FROM schema_version").fetchone()[0])


def test_an_upgrade_whose_index_fits_once_and_not_twice_is_refused_and_runs_once_there_is_room(
    tmp_path: Path,
) -> None:
    source = tmp_path / "src.db"
    _database_at_66(source)
    state = tmp_path / "state"
    config = write_config(tmp_path, config_text(tmp_path, smsc_port=free_port()))
    with small_tmpfs(state, source.stat().st_size + 16 * MB):
        shutil.copyfile(source, state / "smsgw.db")
        (state / "smsgw.db").chmod(0o640)
        # Room for the index once (its WAL) and not for its copy into the file after it.
        fill(state / "filler", 7 * MB)
        listed = run(config, "account", "list")
        assert listed.returncode == 1, listed.stderr
        assert _schema(state / "smsgw.db") == 66, listed.stderr  # nothing committed, not even to the WAL
        said = last_line(listed)
        assert "needs about" in said and "free on the filesystem of" in said, said
        assert "migration 67" in said and "nothing was changed" in said, said
        started = run(config, "run")
        assert started.returncode == 1
        assert "needs about" in last_line(started)
        assert _schema(state / "smsgw.db") == 66
        os.unlink(state / "filler")
        again = run(config, "account", "list")
        assert again.returncode == 0, again.stderr
        assert _schema(state / "smsgw.db") == SCHEMA_VERSION


def _at(path: Path, version: int) -> sqlite3.Connection:
    """A database at schema 65 or 67, empty: the store runs no ANALYZE, so the plans do not depend on rows."""
    Store.open(path).close()
    conn = sqlite3.connect(path)
    (undo_migration_66 if version == 65 else undo_migration_68)(conn)
    conn.execute("UPDATE schema_version SET version = ?", (version,))
    return conn


def test_the_estimates_of_an_upgrade_from_65_or_67_read_the_outbox_through_its_index(tmp_path: Path) -> None:
    """At 65 the index of the outbox's kinds names two of them: an estimate naming a third scanned the
    whole outbox, each row with its mail, on every upgrade from 0.2.32 (longer than the migration)."""
    for version in (65, 67):
        conn = _at(tmp_path / f"at{version}.db", version)
        asked: list[str] = []
        conn.set_trace_callback(asked.append)
        upgraderoom.upgrade_writes(conn, version, SCHEMA_VERSION)
        conn.set_trace_callback(None)
        assert asked, version
        for sql in asked:
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            scans = [step for step in plan if step.startswith("SCAN") and "USING COVERING INDEX" not in step]
            assert scans == [], (version, sql, plan)
        conn.close()


MOS = 300_000  # their index of migration 76 takes some 7.8 MB (26 bytes an MO), written twice


def _database_at_75(path: Path) -> None:
    """A database at schema 75 (before each phone's MOs by time) holding MOS MOs of 12-character numbers."""
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        undo_migration_76(conn)
        conn.execute("UPDATE schema_version SET version = 75")
        conn.executemany(
            "INSERT INTO mo(link, source, destination, text, received_at)"
            " VALUES ('main', ?, '+48100200300', 'hi', ?)",
            ((f"+48{600000000 + i * 7919 % 299999999}", 1.7e9 + i) for i in range(MOS)),
        )
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_the_mo_index_upgrade_asks_the_room_it_measures_with_a_margin_not_twice_that(tmp_path: Path) -> None:
    """Counted at 64 bytes an MO where 26 were measured, an upgrade of 1.5 million MOs asked 299 MB
    free and was refused on a filesystem with 157 MB, where it ran. Now 32 bytes an MO, twice (the
    WAL, then the file), and the margin: refused below that, and run above it."""
    source = tmp_path / "src.db"
    _database_at_75(source)
    state = tmp_path / "state"
    config = write_config(tmp_path, config_text(tmp_path, smsc_port=free_port()))
    with small_tmpfs(state, source.stat().st_size + 48 * MB):
        shutil.copyfile(source, state / "smsgw.db")
        (state / "smsgw.db").chmod(0o640)
        need = 2 * MOS * 32 + upgraderoom.MARGIN_BYTES
        fill(state / "filler", need - 2 * MB)  # more than the index takes twice (15.6 MB), less than asked
        listed = run(config, "account", "list")
        assert listed.returncode == 1, listed.stderr
        said = last_line(listed)
        assert "needs about 23 MB" in said and "migration 76" in said, said
        assert _schema(state / "smsgw.db") == 75
        os.unlink(state / "filler")
        fill(state / "filler", need + 8 * MB)  # the 64 bytes an MO asked 42.6 MB
        again = run(config, "account", "list")
        assert again.returncode == 0, again.stderr
        assert _schema(state / "smsgw.db") == SCHEMA_VERSION
