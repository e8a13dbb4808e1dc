"""What the log says when the database is opened: a fresh install's first start logged 38
`store.migrated` INFO lines, one per schema version, before anything the admin wanted to read.
A database made now is said in one line; an upgrade still says each step it ran, at INFO, since
that is what an admin looks for after one."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
from structlog.testing import capture_logs

from gateway.store.db import Store
from gateway.store.schema import SCHEMA_VERSION
from tests.test_store import undo_migration_27


@contextmanager
def every_level() -> Iterator[list[dict[str, Any]]]:
    """The events logged meanwhile, DEBUG included (a test before may have left an INFO filter)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)


def store_events(logs: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(e["log_level"], e["event"], e["version"]) for e in logs if e["event"].startswith("store.")]


def test_a_new_database_is_one_info_line_and_its_steps_are_debug(tmp_path: Path) -> None:
    path = tmp_path / "state" / "smsgw.db"
    with every_level() as logs:
        Store.open(path).close()
    events = store_events(logs)
    assert [e for e in events if e[0] != "debug"] == [("info", "store.created", SCHEMA_VERSION)], events
    steps = [e for e in events if e[1] == "store.migrated"]
    # One step from the script of what the migrations build (tests/test_fresh_schema.py), and one
    # for each migration added since it was written.
    assert steps and all(level == "debug" for level, _, _ in steps), steps
    assert steps[-1][2] == SCHEMA_VERSION, steps
    created = next(e for e in logs if e["event"] == "store.created")
    assert created["path"] == str(path)


def test_opening_it_again_says_nothing(tmp_path: Path) -> None:
    path = tmp_path / "smsgw.db"
    Store.open(path).close()
    with every_level() as logs:
        Store.open(path).close()
    assert store_events(logs) == []


def test_an_upgrade_says_each_step_at_info_and_is_not_called_created(tmp_path: Path) -> None:
    path = tmp_path / "smsgw.db"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        undo_migration_27(conn)  # and those after it: a database of version 26
        conn.execute("UPDATE schema_version SET version = 26")
    conn.close()
    with every_level() as logs:
        Store.open(path).close()
    events = store_events(logs)
    assert events == [("info", "store.migrated", v) for v in range(27, SCHEMA_VERSION + 1)], events
