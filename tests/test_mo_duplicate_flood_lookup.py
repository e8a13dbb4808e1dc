"""Whether a long MO, or a part of one, is the SMSC delivering it again also reads the copies of its parts
recorded as duplicates since (`RedeliveryRepo._read_since`, `segmentrepeats._copy_again`). Asked on the
event loop's thread for every MO. Without statistics (this store runs no ANALYZE) the planner read those
by `mo_state`: every duplicate of every phone between the two copies, 200,000 of other phones 268 ms a
lookup. They are now read by the phone's parts (`mo_segments`).

On a real SQLite file, the work counted in SQLite's virtual machine steps (a progress handler), which no
load on the machine changes."""

from __future__ import annotations

from pathlib import Path

from gateway.store.db import Store
from tests.test_mo_redelivery_lookup import steps
from tests.test_store import Clock

PHONE, NUMBER = "+48601222222", "7910"
OTHERS = 30_000  # duplicates of other phones' parts between the copies
STEPS = 3_000  # VM steps the lookup may take, however many (it took some 150,000 and more)
VOTE = ((1, "KP123 A part one "), (2, "and two"))


def voted_then_flooded(store: Store) -> None:
    """A long vote joined from the phone, its acknowledgements read, then OTHERS duplicates of other
    phones' parts, a minute on."""
    conn, clock = store.db.conn, store.clock
    for seq, text in VOTE:
        store.mo.record_mo("c1", PHONE, NUMBER, text, 0, (9, 2, seq), smsc_time=None, protocol="cimd2")
    store.mo.mark_acked([r for (r,) in conn.execute("SELECT id FROM mo")], clock())
    with store.db.transaction():
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO mo (link, source, destination, text, state, received_at, concat_ref,"
            " concat_total, concat_seq)"
            " SELECT 'c1', printf('+486019%05d', i % 5000), ?, 'X', 'duplicate', ?, 1, 2, 1 FROM n",
            (OTHERS, NUMBER, clock()),
        )
    clock.t += 60


def test_a_long_votes_next_copy_is_judged_by_the_phones_parts(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    try:
        voted_then_flooded(store)
        for seq, text in VOTE:
            store.mo.record_mo("c1", PHONE, NUMBER, text, 0, (9, 2, seq), smsc_time=None, protocol="cimd2")
        (new,) = store.db.conn.execute("SELECT MAX(id) FROM mo WHERE concat_seq IS NULL").fetchone()
        earlier, cost = steps(store.db.conn, lambda: store.mo.redelivery_of(new))
        assert cost < STEPS, cost
        assert earlier is None  # a minute after its acknowledgement was read: the phone's next vote
    finally:
        store.close()


def test_a_part_delivered_again_is_judged_by_the_phones_parts(tmp_path: Path) -> None:
    """The vote's parts delivered again: the set they make, whole, repeats one joined already."""
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    try:
        voted_then_flooded(store)
        (seq, first), (last_seq, last) = VOTE
        store.mo.record_mo("c1", PHONE, NUMBER, first, 0, (9, 2, seq), smsc_time=None, protocol="cimd2")
        _, cost = steps(
            store.db.conn,
            lambda: store.mo.record_mo(
                "c1", PHONE, NUMBER, last, 0, (9, 2, last_seq), smsc_time=None, protocol="cimd2"
            ),
        )
        assert cost < STEPS, cost
    finally:
        store.close()
