"""The monthly billing files do not hold up a phone's answer: bulk mail goes after what else is due.

On the first of the month the billing run queues a file for every billing address of every company
at once, hundreds of mails with attachments. The outbox sent its mail in the order it was queued, so
a phone's answer to a staff member, or a bounce, queued a moment later waited for the whole run.
Now mail of the bulk kinds is claimed after any other mail that is due.
"""

from __future__ import annotations

from pathlib import Path

from billing_reports.job import KIND as BILLING_KIND
from gateway.store.outbox import BULK_KINDS
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
