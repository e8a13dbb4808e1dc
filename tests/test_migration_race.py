"""Two processes upgrading one database at once: the daemon's first start after an upgrade, and a
`smsgw status` from monitoring that came at the same moment.

Each read the schema version once, before waiting for the write lock; the second then ran the
migrations the first had committed meanwhile and failed on "index … already exists": the daemon
exited at its first start (systemd restarted it 5 s later), or a command printed an error.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from gateway.store.db import Store
from gateway.store.schema import SCHEMA_VERSION
from tests.test_store import undo_migration_27


def test_openers_waiting_on_one_upgrade_each_skip_what_another_committed(tmp_path: Path) -> None:
    path = tmp_path / "smsgw.db"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        undo_migration_27(conn)  # and those after it: a database of version 26
        conn.execute("UPDATE schema_version SET version = 26")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a first opener busy migrating holds it
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Store.open(path).close()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    openers = [threading.Thread(target=open_it) for _ in range(3)]
    for t in openers:
        t.start()
    time.sleep(1.0)  # each has read version 26 and waits for the lock
    holder.execute("COMMIT")
    holder.close()
    for t in openers:
        t.join(60)
    assert errors == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"messages_counts", "outbox_age", "conversations_user"} <= indexes
