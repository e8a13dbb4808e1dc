"""The clock check's reading kept in the store for the next start (`gateway.clocksteps.KeptReading`),
as the start finds it: damaged, edited by hand, or from the same boot yet ahead of its boot time.

A value that could not be read stopped every start (a missing key, a mark of 1e400, deep nesting
escaped the read) until the row was deleted by hand; it is said once and ignored. A reading of the
same boot with a boot time ahead of the current one (a VM reverted to a memory snapshot, its state
directory outside the snapshot) read as a step forward of the difference, and extended every
validity by it; it is judged as another boot's. Real SQLite store; the wall clock and boot time
injected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.clocksteps import KeptReading
from gateway.store.clockstep import READING_KEY, Marks, Reading, read_marks, save_reading, saved_reading
from gateway.store.db import Store
from tests.conftest import running_gateway
from tests.test_clock_step import DAY, HOUR, accepted, due_at, housekeeping
from tests.test_clock_step_seeded import one_boot_daemon, one_boot_store
from tests.test_store import Clock

GOOD = {"boot": "boot-a", "wall": 1_700_000_000.0, "elapsed": 400.0, "marks": [0, 0, 0], "ahead": []}
CORRUPT = {
    "no boot": json.dumps({k: v for k, v in GOOD.items() if k != "boot"}),
    "a mark of 1e400": json.dumps(GOOD).replace('"marks": [0', '"marks": [1e400'),
    "a mark beyond SQLite's integers": json.dumps({**GOOD, "marks": [2**63, 0, 0]}),
    "a negative mark": json.dumps({**GOOD, "marks": [-1, 0, 0]}),
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "a list": "[]",
    "not JSON": "{",
    "two marks": json.dumps({**GOOD, "marks": [0, 0]}),
    "an infinite wall clock": json.dumps(GOOD).replace("1700000000.0", "1e400"),
    "a negative boot time": json.dumps({**GOOD, "elapsed": -1e9}),
    "ahead not pairs": json.dumps({**GOOD, "ahead": [[1, 2, 3]]}),
}


def kept(store: Store, text: str) -> None:
    with store.db.conn:
        store.db.conn.execute(
            "INSERT INTO billing_state (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (READING_KEY, text),
        )


@pytest.mark.parametrize("text", CORRUPT.values(), ids=CORRUPT.keys())
async def test_a_reading_that_cannot_be_read_is_said_and_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    clock, mono, store = one_boot_store(tmp_path, monkeypatch)
    kept(store, text)
    with capture_logs() as logs:
        hk = housekeeping(store, mono)  # the start
    assert hk._readings is None and hk.steps.last is None
    assert [e["event"] for e in logs] == ["clock.reading_unreadable"]
    assert await hk.check_clock() == 0.0  # its own first reading, kept over the damaged one
    found = saved_reading(store.db.conn)
    assert found is not None and found[0] == "boot-a" and found[1].wall == clock.t
    store.close()


async def test_the_daemon_starts_with_a_reading_that_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, cfg, boot = one_boot_daemon(tmp_path, monkeypatch)
    async with running_gateway(cfg, clock, boot):
        pass
    store = Store.open(cfg.db_path, clock=clock)
    kept(store, CORRUPT["a mark of 1e400"])
    store.close()
    async with running_gateway(cfg, clock, boot) as gw:
        assert gw.daemon.housekeeping.kept.boot == "boot-a"


async def test_a_reading_of_this_boot_ahead_of_its_boot_time_is_no_step_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, mono, store = one_boot_store(tmp_path, monkeypatch)
    part = await accepted(store)
    with store.db.conn:  # kept 30 days of boot time on: no run of this boot has reached it
        save_reading(store.db.conn, "boot-a", Reading(clock.t, mono.t + 30 * DAY, read_marks(store.db.conn)))
    was = due_at(store, part)
    hk = housekeeping(store, mono)
    assert await hk.check_clock() == 0.0
    assert due_at(store, part) == pytest.approx(was, abs=0.01)  # its validity not extended by 30 days
    store.close()


def test_a_reading_of_this_boot_ahead_of_its_boot_time_is_judged_as_another_boots(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    with store.db.conn:
        save_reading(store.db.conn, "boot-a", Reading(1_000_000.0, 50.0 + DAY, Marks(7, 3, 2)))
    kept = KeptReading("boot-a", 5.0)
    assert kept.load(store.db.conn, 1_000_000.0 + 60.0, 50.0) is None  # a wall clock ahead: time passed
    behind = kept.load(store.db.conn, 1_000_000.0 - HOUR, 50.0)  # behind: stepped back, no time passed
    assert behind == Reading(1_000_000.0, 50.0, Marks(7, 3, 2))
    with store.db.conn:  # within the jitter: this boot's, as it was kept
        save_reading(store.db.conn, "boot-a", Reading(1_000_000.0, 53.0, Marks(7, 3, 2)))
    assert kept.load(store.db.conn, 1_000_000.0 + 60.0, 50.0) == Reading(1_000_000.0, 53.0, Marks(7, 3, 2))
    store.close()
