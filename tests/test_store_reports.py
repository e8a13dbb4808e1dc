# ruff: noqa: F811  (the tests take test_store's `store` fixture, imported by name)
"""Delivery reports meeting their parts: one before its submit answer (even across a restart), reports
under a CIMD2 key two SMS were given matched to neither, a failed part ending its message once and
naming the others, and a repeated report kept with its part instead of given to a newer SMS with the
same id. Split from test_store.py by subject."""

from __future__ import annotations

from pathlib import Path

from gateway.smtp.accept import accept
from gateway.store.db import Store
from tests.test_store import (
    Clock,
    acceptance,
    store,  # noqa: F401  (the fixture)
)


async def test_report_before_submit_answer_is_applied(store: Store) -> None:
    # A DLR that overtakes submit_sm_resp is kept and applied once the id is known.
    await accept(store, acceptance(["+48601123456"]))
    (part,) = store.queue.claim_due(10)
    assert store.queue.record_report("main", "abc", "delivered", None, "raw") == []
    finished = store.queue.mark_submitted(part.id, "main", "abc")
    assert [f.state for f in finished] == ["delivered"]


async def test_reports_under_a_key_two_sms_were_given_settle_neither(store: Store) -> None:
    # A CIMD2 key (060 stamp:number) the SMSC gave two SMS (two binds of its account, or before and
    # after a restart): oldest first, the second's failure failed the first, which had been delivered.
    await accept(store, acceptance(["+48601123456"]))
    await accept(store, acceptance(["+48601123456"]))
    a, b = store.queue.claim_due(10)
    store.queue.mark_submitted(a.id, "c", "261121045908:48601123456")
    store.queue.mark_submitted(b.id, "c", "261121045908:48601123456")
    store.queue.record_report("c", "261121045908:48601123456", "failed", "unknown subscriber", "")
    store.queue.record_report("c", "261121045908:48601123456", "delivered", None, "")
    states = [r[0] for r in store.db.conn.execute("SELECT state FROM messages ORDER BY id")]
    assert states == ["submitted", "submitted"]  # to end `unreported`, neither told wrongly
    assert store.db.conn.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone()[0] == 2


async def test_failed_part_fails_message_once_naming_the_part(store: Store) -> None:
    # one status per message; the failure names which part.
    await accept(store, acceptance(["+48601123456"], parts=3))
    parts = store.queue.claim_due(10)
    for p in parts:
        store.queue.mark_submitted(p.id, "main", f"id{p.seq}")
    assert store.queue.record_report("main", "id1", "delivered", None, "") == []
    finished = store.queue.record_report("main", "id2", "failed", "UNDELIV err:001", "")
    assert len(finished) == 1 and finished[0].state == "failed"
    # ... and what became of the others: naming only the failed part read as if they had arrived.
    said = "part 2 of 3: UNDELIV err:001 (part 1 delivered; part 3 sent, report pending)"
    assert finished[0].reason == said
    assert store.queue.record_report("main", "id3", "failed", "UNDELIV", "") == []
    # Parts not sent yet when one fails are not sent at all, and the reason says so.
    await accept(store, acceptance(["+48601123457"], parts=3))
    first, *_rest = store.queue.claim_due(1)
    store.queue.mark_submitted(first.id, "main", "id4")
    (failed,) = store.queue.record_report("main", "id4", "failed", "UNDELIV", "")
    assert failed.reason == "part 1 of 3: UNDELIV (parts 2, 3 not sent)"


async def test_report_stored_before_a_restart_still_meets_its_submit_answer(tmp_path: Path) -> None:
    # The search for an early receipt is skipped while none is young; one left by the previous run
    # of the daemon counts too.
    path = tmp_path / "db.sqlite"
    clock = Clock()
    before = Store.open(path, clock=clock)
    await accept(before, acceptance(["+48601123456"]))
    (part,) = before.queue.claim_due(10)
    assert before.queue.record_report("main", "abc", "delivered", None, "raw") == []
    before.close()
    after = Store.open(path, clock=clock)
    finished = after.queue.mark_submitted(part.id, "main", "abc")
    assert [f.state for f in finished] == ["delivered"]
    after.close()


async def test_a_repeated_report_is_kept_with_its_part_not_given_to_a_newer_sms_with_that_id(
    tmp_path: Path,
) -> None:
    # An SMSC sends a report again when our answer to it was lost. Kept unmatched, the repeat was
    # logged dlr.unmatched and taken as the early receipt of the next SMS given the same id: that
    # one was "delivered" before its phone had it.
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    try:
        await accept(store, acceptance(["+48601123456"]))
        (first,) = store.queue.claim_due(10)
        store.queue.mark_submitted(first.id, "main", "abc")
        assert [f.state for f in store.queue.record_report("main", "abc", "delivered", None, "r")] == [
            "delivered"
        ]
        # A report of the other outcome is no repeat: it stays unmatched, the first final one kept.
        assert store.queue.record_report("main", "abc", "failed", "x", "other") == []
        unmatched = "SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL"
        assert store.db.conn.execute(unmatched).fetchone() == (1,)
        store.db.conn.execute("DELETE FROM dlrs WHERE part_id IS NULL")
        clock.t += 5
        await accept(store, acceptance(["+48601999888"]))
        (second,) = store.queue.claim_due(10)
        clock.t += 1
        assert store.queue.record_report("main", "abc", "delivered", None, "r again") == []
        assert store.queue.mark_submitted(second.id, "main", "abc") == []  # the SMSC gave "abc" again
        rows = store.db.conn.execute("SELECT id, state FROM parts ORDER BY id").fetchall()
        assert rows == [(first.id, "delivered"), (second.id, "submitted")]
        dlrs = store.db.conn.execute("SELECT part_id FROM dlrs ORDER BY id").fetchall()
        assert dlrs == [(first.id,), (first.id,)]
    finally:
        store.close()
