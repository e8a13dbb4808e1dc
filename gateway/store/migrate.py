"""Bringing a database's schema to this smsgw's version (`gateway.store.schema.MIGRATIONS`), when
the daemon or a command opens it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import structlog

from gateway.store import freshscript, upgraderoom
from gateway.store.fileguard import StoreUnusable
from gateway.store.schema import MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    from gateway.startprogress import StartProgress
    from gateway.store.db import Db

log = structlog.get_logger(__name__)


def migrate(
    db: Db, existed: bool, progress: StartProgress | None = None, lock_wait: float = 30.0
) -> int | None:
    """Bring the schema to this version, one migration a transaction; the version an existing
    database was at when this process upgraded it, None when it did not (already current, created
    now, or upgraded by another process meanwhile): a command says so, the daemon's log does.

    Another process may be doing the same at the same moment (the daemon's first start after an
    upgrade, and a `smsgw status` from monitoring): each migration reads the version again once
    it holds the write lock, and one the other process has committed meanwhile is skipped. Read
    once before the loop, the second process ran a committed migration again and failed on
    "index … already exists": a daemon that exited at its first start, a command with an error.

    The daemon's start passes `progress`: each step is told before it runs, and a wait for the
    write lock (up to `lock_wait` seconds, as SQLite's busy timeout waited) is taken in turns of the
    connection's short busy timeout, each told too, so that systemd's start allowance is extended
    while the start waits (SQLite's progress handler is not called during a busy wait).
    """
    conn = db.conn
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "schema_version" not in tables and existed and tables:
        raise StoreUnusable(
            f"database {db.path} holds tables but no schema version: it is not an smsgw "
            "database, or it is damaged. Point [gateway] state_dir elsewhere or restore a backup."
        )
    if "schema_version" not in tables:

        def versioned() -> bool:
            with db.transaction():
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                conn.execute(
                    "INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version)"
                )
            return True

        # In turns of the start's short busy timeout as the steps below: one wait, as long as theirs.
        _waiting_for_the_lock(versioned, 1, progress, lock_wait)
    version = _version(db)
    if version > SCHEMA_VERSION:
        raise StoreUnusable(
            f"database {db.path} has schema version {version}, newer than this smsgw "
            f"understands ({SCHEMA_VERSION}); run the newer smsgw or restore a backup."
        )
    # A new database is made in one step from the script of what the migrations build
    # (`gateway.store.freshschema`), and by the migrations added since the script was written, if
    # any: one line says so, the steps are kept for DEBUG. An upgrade says each step at INFO: what
    # it changed is what an admin looks for after one.
    created = version == 0
    step = log.debug if created else log.info
    ran = 0
    upgraded_from = None
    if created and 0 < freshscript.VERSION <= SCHEMA_VERSION:
        if _step(db, 0, freshscript.VERSION, freshscript.STATEMENTS, progress, lock_wait):
            ran += 1
            step("store.migrated", version=freshscript.VERSION, path=str(db.path), script=True)
        version = _version(db)  # or as another process made it meanwhile
    if not created and version < SCHEMA_VERSION:
        # Before the first migration commits: a disk filled by the upgrade's checkpoint took no mail.
        upgraderoom.refuse_short_room(db.conn, db.path, version, SCHEMA_VERSION)
    for number in range(version, SCHEMA_VERSION):
        if progress is not None and not created:
            progress.upgrading(number, SCHEMA_VERSION)
        migrated = _migrate_one(db, number, progress, lock_wait)
        if progress is not None and not created:
            progress.upgraded(number + 1)  # by this process or another: the schema it has now
        if not migrated:
            continue  # another process committed it while this one waited for the lock
        if upgraded_from is None:
            upgraded_from = number
        ran += 1
        step("store.migrated", version=number + 1, path=str(db.path))
    if created and ran:
        log.info("store.created", version=SCHEMA_VERSION, path=str(db.path))
        return None
    return upgraded_from


def _migrate_one(db: Db, number: int, progress: StartProgress | None, lock_wait: float) -> bool:
    """Migration `number + 1` in its own transaction; False when it was committed already."""
    return _step(db, number, number + 1, _split_sql(MIGRATIONS[number]), progress, lock_wait)


def _step(
    db: Db,
    number: int,
    to: int,
    statements: Sequence[str],
    progress: StartProgress | None,
    lock_wait: float,
) -> bool:
    """`statements` in one transaction, taking the schema from version `number` to `to`; False when
    another process took it past `number` meanwhile."""
    conn = db.conn

    def work() -> bool:
        with db.transaction():
            if _version(db) > number:
                return False
            for statement in statements:
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = ?", (to,))
        return True

    return _waiting_for_the_lock(work, number + 1, progress, lock_wait)


def _waiting_for_the_lock(
    work: Callable[[], bool], migration: int, progress: StartProgress | None, lock_wait: float
) -> bool:
    """`work` (one transaction), tried again while another process holds the write lock, up to
    `lock_wait` seconds in all: the daemon's start waits in turns of its short busy timeout, each
    told to `progress` (which extends systemd's start allowance); a command's connection waits out
    its own busy timeout once."""
    started = time.monotonic()
    while True:
        try:
            return work()
        except sqlite3.OperationalError as exc:
            waited = time.monotonic() - started
            if progress is None or not _busy(exc) or waited >= lock_wait:
                raise
            progress.waiting(migration)


def _busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or "locked" in str(exc)


def _version(db: Db) -> int:
    return int(db.conn.execute("SELECT version FROM schema_version").fetchone()[0])


def _split_sql(script: str) -> list[str]:
    """Statements of a migration, so they run inside our transaction (executescript would commit)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
