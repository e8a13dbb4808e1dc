"""`mo.waiting` says an answer waits for its SMS's submit once the MO's write is committed: said inside
the write, a COMMIT the full disk refused, tried again, logged it at each try for an MO the database
never held as waiting (as `message.state` was, until it went after the commit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.conversations import waiting
from gateway.smtp.accept import accept
from gateway.store.db import Store
from tests.test_store import Clock, acceptance


def _waiting(logs: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(e["mo"], e["message"]) for e in logs if e["event"] == "mo.waiting"]


async def test_a_wait_whose_write_is_undone_logs_nothing_and_the_committed_one_logs_once(
    tmp_path: Path,
) -> None:
    store = Store.open(tmp_path / "smsgw.db", clock=Clock())
    await accept(store, acceptance(["+48601123456"]))
    [(message,)] = store.db.conn.execute("SELECT id FROM messages").fetchall()
    mo = store.mo.record_mo("main", "+48601123456", "+48100200300", "Tak", 0, None)
    assert mo is not None
    with structlog.testing.capture_logs() as undone:
        with pytest.raises(OSError), store.db.transaction():
            waiting.keep(store, mo, message, None)
            raise OSError("database or disk is full")  # the write's COMMIT refused
    assert store.db.conn.execute("SELECT state FROM mo WHERE id = ?", (mo,)).fetchone()[0] == "new"
    assert _waiting(undone) == []  # nothing said of a wait never saved
    with structlog.testing.capture_logs() as kept:
        with store.db.transaction():
            waiting.keep(store, mo, message, None)
            assert _waiting(kept) == []  # not before the commit
    store.close()
    assert _waiting(kept) == [(mo, message)]
