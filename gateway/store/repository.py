"""What every repository shares: the `Db` it writes through and the clock it stamps rows with.

A repository owns the SQL of one area and nothing else; it never commits on its own terms (a verb
opens a transaction that joins the caller's, if any), so the caller decides what is atomic.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.store.db import Db


class Repository:
    def __init__(self, db: Db, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self.db.transaction()
