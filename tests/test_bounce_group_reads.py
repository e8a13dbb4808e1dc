"""What the one bounce of a mail's failures reads (`gateway.bouncegroup`, `gateway.store.outboxgroups`).

Whether the mail has SMS still in flight is read once per call of the Notifier, not once per failure:
a mail of thousands of numbers expiring whole read every one of its SMS at each of its failures. A
held bounce is released by the mail's own index, not by the index of every mail waiting in the
outbox. Counted and planned, never timed: a real SQLite file on an injected clock, the real
housekeeping and notifier.
"""

from __future__ import annotations

from pathlib import Path

from gateway.notifier import Notifier
from gateway.smtp.accept import accept
from gateway.store.db import Store
from gateway.store.outboxgroups import _IN_FLIGHT, GROUP_KIND, members
from tests.conftest import free_port, make_config
from tests.test_expiry_batches import VALIDITY, housekeeping
from tests.test_store import Clock, acceptance


async def test_a_mail_expiring_whole_reads_whether_it_has_sms_in_flight_once(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    count = 40  # one expiry write (EXPIRE_BATCH), one bounce (GROUP_MAX)
    await accept(store, acceptance([f"+486010{i:05d}" for i in range(count)]))
    store.db.serve()
    clock.t += VALIDITY + 1
    hk = housekeeping(tmp_path, store)
    hk.started_at = clock.t  # no stale MO segments to look at
    seen: list[str] = []
    conn = store.db.conn
    conn.set_trace_callback(seen.append)
    try:
        await hk.expire()
    finally:
        conn.set_trace_callback(None)
    [(kind, bounced)] = conn.execute("SELECT kind, bounced FROM outbox").fetchall()
    assert kind == GROUP_KIND and len(members(bounced)) == count
    # The statement as run, its parameter bound: the probe's text up to it.
    probe = _IN_FLIGHT.split("?")[0]
    assert len([sql for sql in seen if sql.startswith(probe)]) == 1, seen  # one a failure before: 40
    store.close()


async def test_a_held_bounce_is_released_by_its_mails_index(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    await accept(store, acceptance(["+48601000001", "+48601000002"]))
    first, last = store.queue.claim_due(2)
    notifier = Notifier(store, make_config(tmp_path, smsc_port=free_port()))
    with store.db.transaction():  # as the dispatcher ends a part refused at submit
        notifier(store.queue.mark_part_final(first.id, "failed", "ESME_RINVDSTADR", link="main"))
    conn = store.db.conn
    [(due,)] = conn.execute("SELECT next_attempt_at FROM outbox").fetchall()
    assert due > clock.t  # held for the other SMS, in flight
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        with store.db.transaction():
            notifier(store.queue.mark_part_final(last.id, "failed", "ESME_RINVDSTADR", link="main"))
    finally:
        conn.set_trace_callback(None)
    [(due, bounced)] = conn.execute("SELECT next_attempt_at, bounced FROM outbox").fetchall()
    assert due <= clock.t and len(members(bounced)) == 2  # released at the last one's end
    [release] = [sql for sql in seen if sql.startswith("UPDATE outbox") and "SET next_attempt_at = " in sql]
    plan = " | ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + release))
    # By outbox_due (state, next_attempt_at), every queued mail waiting for a retry was read.
    assert "USING INDEX outbox_email_ref (email_ref=?)" in plan, plan
    store.close()
