"""A start reads back the link a long SMS moved away from out of its parts' note (`longsms.moved_away`).
A link type switch's note (`linkprotocol.NOTE`) begins with the same words: it was read as a move and
its words' prefix came back as a link name. On a real SQLite file with the parts table's columns."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

from gateway.linkprotocol import NOTE
from gateway.longsms import MOVED_NOTE, moved_away


def test_only_a_moves_note_names_a_link_moved_away_from(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "parts.db")
    conn.execute("CREATE TABLE parts (message_id INTEGER, state TEXT, error TEXT)")
    conn.executemany(
        "INSERT INTO parts VALUES (?, ?, ?)",
        [
            (1, "queued", MOVED_NOTE.format("smsc-a", 700.0)),
            (2, "queued", NOTE.format("smsc-b", "SMPP", "CIMD2")),
            (3, "deferred", MOVED_NOTE.format("smsc-c", 121.0)),
        ],
    )
    store = SimpleNamespace(db=SimpleNamespace(conn=conn))
    assert moved_away(store) == {1: "smsc-a", 3: "smsc-c"}  # type: ignore[arg-type]
