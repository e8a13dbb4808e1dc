"""How often the clock check keeps its reading in the store (`gateway.clocksteps.KeptReading`).

A look kept it whenever rows had been written since the last one: under traffic, a write of its own
every 2 s, for a reading only the next start reads. It is kept once a minute, rows or not, and by the
stop's last look, so that a clean stop leaves the next start no row to place by its time. Real SQLite
store; the wall clock and boot time injected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.housekeeping import STATUS_INTERVAL
from gateway.store.clockstep import read_marks, saved_reading
from gateway.store.db import Store
from tests.conftest import mail, running_gateway
from tests.test_clock_step import accepted, housekeeping, to
from tests.test_clock_step_seeded import one_boot_daemon, one_boot_store, reading_kept


async def test_under_traffic_the_reading_is_kept_once_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, mono, store = one_boot_store(tmp_path, monkeypatch)
    hk = housekeeping(store, mono)
    kept: list[float] = []
    keep = hk.kept.keep

    async def counted(*args: object) -> None:
        kept.append(clock.t)
        await keep(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(hk.kept, "keep", counted)
    for _ in range(60):  # two minutes of looks, an SMS accepted before each
        await accepted(store)
        assert await hk.check_clock() == 0.0
        clock.t += STATUS_INTERVAL
        mono.t += STATUS_INTERVAL
    assert len(kept) == 2, kept  # the first look's, and one a minute on (a write a look before: 60)
    store.close()


async def test_a_clean_stop_keeps_the_reading_with_the_rows_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, cfg, boot = one_boot_daemon(tmp_path, monkeypatch)
    async with running_gateway(cfg, clock, boot) as gw:
        await reading_kept(gw)  # the worker's first look
        numbers = [to("601142101")]
        assert (await gw.send(mail(numbers, "Accepted after the kept reading"), numbers)).error is None
    store = Store.open(cfg.db_path, clock=clock)
    found = saved_reading(store.db.conn)
    assert found is not None and found[1].marks == read_marks(store.db.conn)  # none left to place by time
    store.close()
