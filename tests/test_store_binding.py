"""Parameters the store binds by the hundred per mail: None and bytes take no detour.

Python's sqlite3 looks an unadapted None or bytes parameter up through its adaptation protocol (an
AttributeError built and dropped each time, some 3,000 instructions); `gateway.store.db` registers
adapters that give back the very object, so the columns are written as before: NULL and BLOB.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store.db import Store


def test_none_and_bytes_are_bound_without_the_adaptation_lookup_and_stored_as_before(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "gw.db")
    try:
        conn = store.db.conn
        assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)](None) is None
        payload = b"\x05\x00\x03\x01\x02\x01Hello"
        assert sqlite3.adapters[(bytes, sqlite3.PrepareProtocol)](payload) is payload
        row = conn.execute("SELECT ?, typeof(?), ?, typeof(?)", (None, None, payload, payload)).fetchone()
        assert row == (None, "null", payload, "blob")
        # A subclass or another buffer is not the registered type: adapted (or not) as before.
        view = conn.execute("SELECT ?, typeof(?)", (memoryview(payload), memoryview(payload))).fetchone()
        assert view == (payload, "blob")
    finally:
        store.close()
