"""Long MO texts: segments joined in order, duplicates once, gaps marked after the timeout (R-3.4)."""

from __future__ import annotations

from pathlib import Path

from gateway import reassembly
from gateway.store.db import Store
from tests.conftest import make_config, running_gateway
from tests.fakes.smsc import HappySMSC


def test_join_orders_segments_and_marks_gaps() -> None:
    # Arrival order and repeats do not matter; a missing segment shows as a visible gap.
    assert reassembly.join([(2, "b"), (1, "a"), (2, "b"), (3, "c")], 3) == "abc"
    assert reassembly.join([(1, "a"), (3, "c")], 3) == f"a{reassembly.GAP}c"
    assert not reassembly.complete([(1, "a"), (3, "c")], 3)


def test_store_joins_out_of_order_and_duplicate_segments(tmp_path: Path) -> None:
    # Three segments, one twice and out of order, give one whole MO once the set is complete.
    s = Store.open(tmp_path / "db.sqlite")
    assert s.mo.record_mo("l", "+48601123456", "+48100200300", "world", 0, (7, 3, 2)) is None
    assert s.mo.record_mo("l", "+48601123456", "+48100200300", "world", 0, (7, 3, 2)) is None
    assert s.mo.record_mo("l", "+48601123456", "+48100200300", "!", 0, (7, 3, 3)) is None
    mo = s.mo.record_mo("l", "+48601123456", "+48100200300", "hello ", 0, (7, 3, 1))
    assert mo is not None and s.mo.mo_text(mo) == ("+48601123456", "hello world!")
    # Same reference from another phone is another text.
    assert s.mo.record_mo("l", "+48601999999", "+48100200300", "x", 0, (7, 2, 1)) is None


def test_incomplete_set_is_joined_with_a_gap_after_the_timeout(tmp_path: Path) -> None:
    # Never dropped: after the timeout the segments that came are passed on with a gap marker.
    now = [1_700_000_000.0]
    s = Store.open(tmp_path / "db.sqlite", clock=lambda: now[0])
    s.mo.record_mo("l", "+48601123456", "+48100200300", "first ", 0, (9, 2, 1))
    assert s.mo.join_stale_segments(now[0] - reassembly.TIMEOUT_SECONDS) == []
    now[0] += reassembly.TIMEOUT_SECONDS + 1
    (mo,) = s.mo.join_stale_segments(now[0] - reassembly.TIMEOUT_SECONDS)
    assert s.mo.mo_text(mo)[1] == f"first {reassembly.GAP}"


async def test_long_mo_through_the_smsc_is_stored_whole(tmp_path: Path) -> None:
    # A 200-character answer arrives as concatenated deliver_sm and is stored as one text.
    answer = "Dziękuję, będę na spotkaniu o 10:00. " * 6
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await smsc.inject_mo("+48601123456", "+48100200300", answer)
        whole = "FROM mo WHERE state NOT IN ('segment', 'joined')"  # a whole text, whatever became of it
        await gw.until(lambda: gw.store.db.conn.execute(f"SELECT COUNT(*) {whole}").fetchone()[0])
        rows = gw.store.db.conn.execute(f"SELECT text {whole}").fetchall()
        assert rows == [(answer,)]
        assert gw.store.db.conn.execute("SELECT COUNT(*) FROM mo WHERE state = 'joined'").fetchone()[0] > 1
