# ruff: noqa: F811  (the tests take test_store's `store` fixture, imported by name)
"""Parts whose send was cut short: requeued after a crash, telling whether an SMSC may have them
already, expired without being called unsent when an attempt went unanswered, and not ended again
once a late answer settled them. Split from test_store.py by subject."""

from __future__ import annotations

from pathlib import Path

from gateway.smtp.accept import accept
from gateway.store.db import Store
from gateway.store.partnotes import AWAITING_LATE, LINK_LOST, RECOVERED
from tests.test_store import (
    acceptance,
    store,  # noqa: F401  (the fixture)
)


async def test_crash_recovery_requeues_active_parts(tmp_path: Path) -> None:
    # Parts claimed when the process died go back to the queue on the next open.
    s = Store.open(tmp_path / "db.sqlite")
    await accept(s, acceptance(["+48601123456"]))
    (part,) = s.queue.claim_due(10)
    assert not part.maybe_sent
    s.close()
    s2 = Store.open(tmp_path / "db.sqlite")
    assert s2.queue.recover_active() == [part.id]  # named in the log
    (again,) = s2.queue.claim_due(10)
    assert again.maybe_sent  # its submit may have reached the SMSC: the next one may be a duplicate


async def test_a_claimed_part_tells_whether_an_smsc_may_have_it_already(store: Store) -> None:
    # Its note says so after an unanswered submit, a lost connection or a crash; after a plain
    # failure (a refusal for now, a submit that never left) it does not.
    notes = [f"no answer; {AWAITING_LATE}", f"reset; {LINK_LOST}", RECOVERED, "throttled", None]
    await accept(store, acceptance([f"+4860112345{i}" for i in range(len(notes))]))
    claimed = store.queue.claim_due(10)
    for part, note in zip(claimed, notes, strict=True):
        store.queue.release(part.id, delay=0, error=note, count=True)
    assert [p.maybe_sent for p in store.queue.claim_due(10)] == [True, True, True, False, False]


async def test_expired_parts_are_not_sent_late(store: Store) -> None:
    # past the validity, queued parts expire and the message finishes once.
    await accept(store, acceptance(["+48601123456"]))
    store.clock.t += 3601  # type: ignore[attr-defined]
    finished = store.queue.expire_due()
    assert [f.state for f in finished] == ["expired"]
    assert "before it could be sent" in (finished[0].reason or "")
    assert store.queue.claim_due(10) == []


async def test_a_part_expiring_after_an_unanswered_attempt_is_not_called_unsent(store: Store) -> None:
    # The SMSC never answered its submit (or a crash cut the answer off): it may have the SMS, so
    # the sender must not read that it was never sent.
    for note in (f"no submit_sm_resp in time; {AWAITING_LATE}", RECOVERED):
        await accept(store, acceptance(["+48601123456"]))
        (part,) = store.queue.claim_due(10)
        store.queue.release(part.id, delay=60, error=note, count=True)
        store.clock.t += 3601  # type: ignore[attr-defined]
        (finished,) = store.queue.expire_due()
        assert finished.state == "expired"
        # Delivery unknown either way; only the unanswered submit is said to have maybe reached the
        # phone (a recovered part may have been waiting for its link's pacing, never sent).
        assert "delivery unknown" in (finished.reason or "") and "before it could" not in (
            finished.reason or ""
        )


async def test_a_part_settled_by_a_late_answer_is_not_ended_again(store: Store) -> None:
    # A part claimed ahead whose earlier submit was answered late (accepted) must not be turned
    # into `expired` (and bounced) when its validity runs out before its re-send's turn.
    await accept(store, acceptance(["+48601123456"]))
    (part,) = store.queue.claim_due(10)
    store.queue.mark_submitted(part.id, "main", "abc")
    assert store.queue.mark_part_final(part.id, "expired", "validity period expired") == []
    row = store.db.conn.execute("SELECT p.state, m.state FROM parts p JOIN messages m ON m.id = p.message_id")
    assert row.fetchone() == ("submitted", "submitted")
