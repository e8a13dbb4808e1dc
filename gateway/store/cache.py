"""Settings read on every mail (users, accounts, trusted networks, opt-outs), kept in memory.

Admins change these rows from other processes (the CLI, and the daemon's own web panel), so the
cache is only trusted while the row `settings_generation` keeps the value it was filled under.
Triggers on the four tables (migration 12) give that row a new random value in the very
transaction that changes any of them, whoever writes: no writer can forget to invalidate, and a
value read inside a transaction that is later rolled back never comes back (it is random, not a
counter), so a cache filled from rolled-back rows is never taken for current.

A number added to the shared opt-out list is the exception (migration 79): it gives the row's
`optouts_added` a new random value instead, and every process reads only the rows past the last one
it holds (`_optouts_grew`). A burst of first-time STOPs made each process read the whole list again
at each one (some 55 ms with 100,000 numbers listed), though the list had only grown.

The generation is read at most once per event-loop turn: one primary-key read covers every lookup
an SMTP command makes in that turn. A change committed by another process is seen by the first
lookup of the next turn, and a change by this process at once (its verbs call `invalidate`, or
`optout_added`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Set
from typing import Any

# Opt-out lists are loaded whole up to this size; a longer list is asked per number instead.
OPTOUTS_IN_MEMORY = 100_000
# Entries per lookup map before it starts afresh (unknown senders must not grow it without bound).
MAX_ENTRIES = 10_000
# Opt-outs read inside open transactions and not yet seen committed, before the list is read afresh.
MAX_UNSURE = 1000


class SettingsCache:
    def __init__(self, conn: Callable[[], sqlite3.Connection]) -> None:
        self._conn = conn
        self._generation: Any = None
        self._added: Any = None  # `optouts_added` as the held numbers were read
        self._checked = False  # the generation was read in this loop turn
        self.maps: dict[str, dict[Any, Any]] = {}
        self._optouts: set[str] | None = None
        self._optouts_loaded = False
        self._last: tuple[int, str] | None = None  # (rowid, number) of the last opt-out held
        # Opt-outs (rowid: number) read inside an open transaction: a rollback may take them away,
        # and another process may then add other numbers under the same rowids.
        self._unsure: dict[int, str] = {}
        self._whole_unsure = False  # the list itself was read inside an open transaction
        self._token = object()

    def invalidate(self) -> None:
        """Forget everything (this process changed a setting; the triggers tell other processes)."""
        self._generation = None
        self._checked = False
        self.maps.clear()
        self._drop_optouts()

    def _drop_optouts(self) -> None:
        self._optouts = None
        self._optouts_loaded = False
        self._last = None
        self._unsure.clear()
        self._whole_unsure = False
        self._token = object()

    def optout_added(self) -> None:
        """This process added a number to the shared list: the next lookup reads the generation (and
        so the new row) again, even within this loop turn; nothing else is dropped."""
        self._checked = False

    def changes(self) -> object:
        """A token that is new after any change of the settings, an opt-out added included."""
        self._fresh()
        return self._token

    def _fresh(self) -> None:
        if self._checked:
            return
        conn = self._conn()
        try:
            row = conn.execute("SELECT value, optouts_added FROM settings_generation").fetchone()
        except sqlite3.OperationalError:  # a file before migration 79 (tests of older schemas)
            row = conn.execute("SELECT value, NULL FROM settings_generation").fetchone()
        generation, added = (row[0], row[1]) if row else (None, None)
        if generation is None or generation != self._generation:
            self.invalidate()
            self._generation = generation
            self._added = added
        elif added != self._added:
            self._optouts_grew(conn, added)
        elif not conn.in_transaction:
            # The value read inside a transaction is still there: what was read in it committed.
            self._unsure.clear()
            self._whole_unsure = False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (the CLI, start-up): read the generation every time
            return
        self._checked = True
        loop.call_soon(self._next_turn)

    def _optouts_grew(self, conn: sqlite3.Connection, added: Any) -> None:
        """Numbers were added to the shared list (or an addition read in a transaction was rolled
        back): the rows past the last one held are read, after a check that the rows held still
        stand. Rowids are not the order of commits when a transaction this process read inside rolled
        back (its rowids go to the next writer's rows), nor after a VACUUM: either makes it read the
        list whole, as does any growth after a list read whole inside a transaction (whether that one
        committed is not known until a lookup outside one finds the value it read)."""
        self._token = object()
        self._added = added
        if not self._optouts_loaded or self._optouts is None:
            return  # nothing held (a list too long is asked per number)
        if self._whole_unsure:
            # Inside a transaction too: had it rolled back, the rowids held past the committed rows
            # may be another writer's numbers now, the last one held among them (no row tells), and
            # past this look the list would be taken as committed at the next lookup outside.
            self._drop_optouts()
            return
        outside = not conn.in_transaction
        for rowid, number in self._unsure.items():
            if conn.execute("SELECT number FROM optouts WHERE rowid = ?", (rowid,)).fetchone() != (number,):
                self._drop_optouts()
                return
        if outside:
            self._unsure.clear()
        start = 0 if self._last is None else self._last[0]
        rows = conn.execute("SELECT rowid, number FROM optouts WHERE rowid >= ? ORDER BY rowid", (start,))
        first = self._last is None
        for rowid, number in rows:
            if not first:
                first = True
                if (rowid, number) != self._last:  # the last row held is gone or was renumbered
                    self._drop_optouts()
                    return
                continue
            self._optouts.add(number)
            self._last = (rowid, number)
            if not outside:
                self._unsure[rowid] = number
        if not first or len(self._unsure) > MAX_UNSURE:
            self._drop_optouts()  # not even the last row held was found; or too much to check
        elif len(self._optouts) > OPTOUTS_IN_MEMORY:
            self._optouts = None  # grown too long to hold: asked per number from now on

    def _next_turn(self) -> None:
        self._checked = False

    def get(self, kind: str, key: Any, load: Callable[[], Any]) -> Any:
        """The cached `load()` for (kind, key); `load` runs on a miss or after a settings change."""
        self._fresh()
        entries = self.maps.setdefault(kind, {})
        try:
            return entries[key]
        except KeyError:
            pass
        value = load()
        if self._generation is not None:  # without the table (tests on old files) nothing is kept
            if len(entries) >= MAX_ENTRIES:
                entries.clear()
            entries[key] = value
        return value

    def optouts(self) -> Set[str] | None:
        """Every opted-out number, or None when the list is too long to hold (ask per number)."""
        self._fresh()
        if not self._optouts_loaded:
            conn = self._conn()
            # Looked at past its limit first: a list too long to hold was read up to its first
            # 100,001 numbers at each settings change (some 55 ms on the loop) only to be thrown
            # away, and a count of it all walks millions (an offset stops at the limit).
            too_long = conn.execute("SELECT 1 FROM optouts LIMIT 1 OFFSET ?", (OPTOUTS_IN_MEMORY,)).fetchone()
            if too_long:
                self._optouts = None
            else:
                self._optouts = set()
                for rowid, number in conn.execute("SELECT rowid, number FROM optouts ORDER BY rowid"):
                    self._optouts.add(number)
                    self._last = (rowid, number)
                self._whole_unsure = conn.in_transaction
            self._optouts_loaded = self._generation is not None
        return self._optouts
