"""A shared opt-out list too long to hold in memory is looked at past its limit, not read, when the
settings cache starts afresh. It was read up to its first 100,001 numbers after every settings
change (an admin's user add in the panel, an opt-out taken off), on the daemon's connection, only to
be thrown away: some 55 ms with the loop held. Measured in the memory the look takes, not in time."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from gateway.store import cache as settings_cache
from gateway.store.db import Store

HELD = 1000  # the list's size limit here, for a list well past it to be cheap to make
LISTED = 3000


def test_a_list_too_long_to_hold_is_counted_not_read_after_a_settings_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings_cache, "OPTOUTS_IN_MEMORY", HELD)
    store = Store.open(tmp_path / "smsgw.db")
    try:
        conn = store.db.conn
        conn.executemany(
            "INSERT INTO optouts (number, word, source, created_at) VALUES (?, 'STOP', 'mo', 0)",
            ((f"+48603{i:06d}",) for i in range(LISTED)),
        )
        store.accounts.add_account("acme")  # a settings change: the cache starts afresh
        tracemalloc.start()
        assert store.db.settings.optouts() is None  # too long: asked per number
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < HELD * 20, peak  # no number of the list was taken into memory
        assert store.policy.is_opted_out("+48603000007")
        # A list that fits is still held whole.
        conn.execute("DELETE FROM optouts WHERE number >= '+48603000100'")
        store.db.settings.invalidate()
        held = store.db.settings.optouts()
        assert held is not None and len(held) == 100 and "+48603000007" in held
    finally:
        store.close()
