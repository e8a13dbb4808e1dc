"""What every repository shares: the `Db` it writes through and the clock it stamps rows with.

A repository owns the SQL of one area and nothing else; it never commits on its own terms (a verb
opens a transaction that joins the caller's, if any), so the caller decides what is atomic.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from threading import get_ident
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.store.db import Db


class Repository:
    def __init__(self, db: Db, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    @property
    def conn(self) -> sqlite3.Connection:
        """`Db.conn`, its thread check written out here: one property call less per statement."""
        db = self.db
        if get_ident() != db._owner:
            db._wrong_thread()
        return db._conn

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self.db.transaction()

    @contextmanager
    def changing_settings(self) -> Iterator[sqlite3.Connection]:
        """A transaction over users, accounts, networks or opt-outs: the cached copies are dropped.

        Other processes learn of the change from the generation the schema's triggers bump; this
        one may have read that generation earlier in the same loop turn, hence the explicit drop.
        """
        try:
            with self.transaction() as conn:
                yield conn
        finally:
            self.db.settings.invalidate()
