# ruff: noqa: F811  (the tests take test_store's `store` fixture, imported by name)
"""A receipt on a link matches that link's own SMS before one sent by a link gone from the config.

Defect: every link gone from the config (`gone_links`, a link renamed) was a candidate of each receipt
alike, and the oldest part took it: with another operator's link removed, whose SMSC gave the same id,
a live link's UNDELIV failed and bounced the removed link's SMS, while the live link's own stayed
`submitted` to end `unreported` a day later. Now the link's own SMS (and its sibling binds') come first;
a gone link's take a receipt only when none of those has that id, and only to the phone it names.

A real SQLite file through the store, as the daemon's receipts reach it (`QueueRepo.record_report`).
"""

from __future__ import annotations

from gateway.smtp.accept import accept
from gateway.store.db import Store
from tests.test_store import (
    acceptance,
    store,  # noqa: F401  (the fixture)
)


def states(store: Store) -> list[str]:
    return [r[0] for r in store.db.conn.execute("SELECT state FROM parts ORDER BY id")]


async def two_sent(store: Store, smsc_id: str, own_id: str | None = None) -> None:
    """The removed link "oldop" sent an SMS under `smsc_id` first, then "live" one under the same id
    (or `own_id`)."""
    store.queue.gone_links = ("oldop",)
    await accept(store, acceptance(["+48601000001", "+48601000002"]))
    old, own = store.queue.claim_due(10)
    store.queue.mark_submitted(old.id, "oldop", smsc_id, old.message_id)
    store.clock.t += 60  # type: ignore[attr-defined]
    store.queue.mark_submitted(own.id, "live", own_id or smsc_id, own.message_id)


async def test_a_final_receipt_on_a_link_fails_its_own_sms_not_a_removed_links(store: Store) -> None:
    await two_sent(store, "77")
    store.queue.record_report("live", "77", "failed", "UNDELIV", "r")
    assert states(store) == ["submitted", "failed"]


async def test_a_pending_receipt_on_a_link_is_kept_with_its_own_sms(store: Store) -> None:
    await two_sent(store, "78")
    store.queue.record_report("live", "78", "pending", None, "r")
    own = store.db.conn.execute("SELECT MAX(id) FROM parts").fetchone()[0]
    assert store.db.conn.execute("SELECT part_id FROM dlrs").fetchall() == [(own,)]


async def test_a_removed_links_sms_takes_a_receipt_no_sms_of_the_link_has_the_id_of(store: Store) -> None:
    # A link renamed: its SMS's receipts come under the new name, and still find them.
    await two_sent(store, "79", "81")
    store.queue.record_report("live", "80", "delivered", None, "r", phone="+48601000001")  # nobody's
    store.queue.record_report("live", "79", "delivered", None, "r", phone="+48601000009")  # another phone
    assert states(store) == ["submitted", "submitted"]
    store.queue.record_report("live", "79", "delivered", None, "r", phone="+48601000001")
    assert states(store) == ["delivered", "submitted"]
