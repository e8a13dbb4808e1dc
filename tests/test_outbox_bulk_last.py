"""The monthly billing files do not hold up a phone's answer: bulk mail goes after what else is due.

On the first of the month the billing run queues a file for every billing address of every company
at once, hundreds of mails with attachments. The outbox sent its mail in the order it was queued, so
a phone's answer to a staff member, or a bounce, queued a moment later waited for the whole run.
Now mail of the bulk kinds is claimed after any other mail that is due.
"""

from __future__ import annotations

from pathlib import Path

from billing_reports.job import KIND as BILLING_KIND
from gateway.store.db import Store
from gateway.store.outboxclaim import BULK_KINDS
from tests.conftest import STAFF, free_port, make_config, running_gateway
from tests.test_mailer import Relay, relay_running

BILLING_MAILS = 40


async def test_an_answer_queued_after_the_billing_run_goes_before_the_rest_of_it(tmp_path: Path) -> None:
    assert BILLING_KIND in BULK_KINDS
    relay = Relay(data_delay=0.1)
    with relay_running(relay) as port:
        cfg = make_config(tmp_path, smsc_port=free_port(), relay_port=port)
        async with running_gateway(cfg) as gw:
            outbox = gw.store.outbox

            def billing_run() -> None:
                for n in range(BILLING_MAILS):
                    rcpt = f"billing{n}@example.com"
                    outbox.enqueue_mail(BILLING_KIND, "", rcpt, b"Subject: file\r\n\r\nx\r\n")

            await gw.store.write(billing_run)
            await gw.store.write(
                lambda: outbox.enqueue_mail("reply", "", STAFF, b"Subject: answer\r\n\r\nthe answer\r\n")
            )
            await gw.until(lambda: len(relay.taken) == BILLING_MAILS + 1, timeout=60)
    order = [i for i, mail in enumerate(relay.taken) if b"the answer" in mail]
    # At most the sends already under way (the worker's 4 slots, twice over at a claim's edge) go first.
    assert order and order[0] < 8, order


def test_a_claim_reads_each_group_off_the_index_without_sorting_every_due_mail(tmp_path: Path) -> None:
    """With 2,000 billing mails queued each claim sorted them all (2 ms at 10,000, on the loop, every
    few milliseconds while they went); now it reads at most its limit off `outbox_claim` per group."""
    clock = [1_000.0]
    store = Store.open(tmp_path / "db.sqlite", clock=lambda: clock[0])
    try:
        outbox = store.outbox
        with store.db.transaction():
            billing = [outbox.enqueue_mail(BILLING_KIND, "", f"b{n}@example.com", b"x") for n in range(2000)]
            clock[0] += 1
            answers = [outbox.enqueue_mail("reply", "", f"a{n}@example.com", b"y") for n in range(3)]
            later = outbox.enqueue_mail("reply", "", "later@example.com", b"z")
            store.db.conn.execute("UPDATE outbox SET next_attempt_at = 5000 WHERE id = ?", (later,))
        store.db.conn.execute("ANALYZE")
        seen: list[str] = []
        store.db.conn.set_trace_callback(seen.append)
        claimed = outbox.claim_mail(5)
        store.db.conn.set_trace_callback(None)
        update = next(s for s in seen if s.startswith("SELECT * FROM (SELECT id, rcpt"))
        plan = " | ".join(r[3] for r in store.db.conn.execute(f"EXPLAIN QUERY PLAN {update}"))
        again = outbox.claim_mail(3)
    finally:
        store.close()
    assert "USING INDEX outbox_claim" in plan and "TEMP B-TREE" not in plan, plan
    # the answers first, then the oldest billing mails; the answer not yet due waits
    assert sorted(m.id for m in claimed) == sorted(answers + billing[:2])
    assert sorted(m.id for m in again) == billing[2:5]
