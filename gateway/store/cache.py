"""Settings read on every mail (users, accounts, trusted networks, opt-outs), kept in memory.

Admins change these rows from other processes (the CLI, and the daemon's own web panel), so the
cache is only trusted while the row `settings_generation` keeps the value it was filled under.
Triggers on the four tables (migration 12) give that row a new random value in the very
transaction that changes any of them, whoever writes: no writer can forget to invalidate, and a
value read inside a transaction that is later rolled back never comes back (it is random, not a
counter), so a cache filled from rolled-back rows is never taken for current.

The generation is read at most once per event-loop turn: one primary-key read covers every lookup
an SMTP command makes in that turn. A change committed by another process is seen by the first
lookup of the next turn, and a change by this process at once (its verbs call `invalidate`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

# Opt-out lists are loaded whole up to this size; a longer list is asked per number instead.
OPTOUTS_IN_MEMORY = 100_000
# Entries per lookup map before it starts afresh (unknown senders must not grow it without bound).
MAX_ENTRIES = 10_000


class SettingsCache:
    def __init__(self, conn: Callable[[], sqlite3.Connection]) -> None:
        self._conn = conn
        self._generation: Any = None
        self._checked = False  # the generation was read in this loop turn
        self.maps: dict[str, dict[Any, Any]] = {}
        self._optouts: frozenset[str] | None = None
        self._optouts_loaded = False

    def invalidate(self) -> None:
        """Forget everything (this process changed a setting; the triggers tell other processes)."""
        self._generation = None
        self._checked = False
        self.maps.clear()
        self._optouts = None
        self._optouts_loaded = False

    def _fresh(self) -> None:
        if self._checked:
            return
        row = self._conn().execute("SELECT value FROM settings_generation").fetchone()
        generation = row[0] if row else None
        if generation is None or generation != self._generation:
            self.invalidate()
            self._generation = generation
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (the CLI, start-up): read the generation every time
            return
        self._checked = True
        loop.call_soon(self._next_turn)

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

    def optouts(self) -> frozenset[str] | None:
        """Every opted-out number, or None when the list is too long to hold (ask per number)."""
        self._fresh()
        if not self._optouts_loaded:
            # Looked at past its limit first: a list too long to hold was read up to its first
            # 100,001 numbers at each settings change (some 55 ms on the loop) only to be thrown
            # away, and a count of it all walks millions (an offset stops at the limit).
            too_long = (
                self._conn()
                .execute("SELECT 1 FROM optouts LIMIT 1 OFFSET ?", (OPTOUTS_IN_MEMORY,))
                .fetchone()
            )
            if too_long:
                self._optouts = None
            else:
                rows = self._conn().execute("SELECT number FROM optouts")
                self._optouts = frozenset(r[0] for r in rows)
            self._optouts_loaded = self._generation is not None
            return self._optouts
        return self._optouts
