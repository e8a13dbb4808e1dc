"""The store's key/value table (`billing_state`) read a key prefix at a time: link binds and moves,
the billing marks of a month. A prefix is a range of its primary key, so the index answers it
(`key >= prefix AND key < the first key past it`) where `LIKE 'prefix%'` would scan the table."""

from __future__ import annotations

import sqlite3
from typing import Any

_UNDER = "SELECT substr(key, ?), value FROM billing_state WHERE key >= ? AND key < ?"


def under(prefix: str) -> tuple[str, tuple[Any, ...]]:
    """The query and its parameters for the (key less the prefix, value) rows under `prefix`."""
    past = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # the first key past the prefix's
    return _UNDER, (len(prefix) + 1, prefix, past)


def keys_under(conn: sqlite3.Connection, prefix: str) -> list[tuple[str, str]]:
    return conn.execute(*under(prefix)).fetchall()
