# ruff: noqa: F811  (the test takes test_store's `store` fixture, imported by name)
"""A mail to many recipients, its messages inserted in one statement (`gateway.store.accepting`)."""

from __future__ import annotations

from gateway.smtp.accept import accept
from gateway.store.db import Store
from tests.test_store import acceptance, store  # noqa: F401  (`store`: test_store's fixture)


async def test_a_mail_to_many_recipients_keeps_ids_and_parts_with_their_recipients(store: Store) -> None:
    # The messages are inserted in one statement; each id and part still belongs to its recipient.
    numbers = [f"+4860112{i:04d}" for i in (7, 3, 9, 1)]
    res = await accept(store, acceptance(numbers, parts=2))
    recipients = [
        store.db.conn.execute("SELECT recipient FROM messages WHERE id = ?", (mid,)).fetchone()[0]
        for mid in res.message_ids
    ]
    assert recipients == numbers
    mismatched = store.db.conn.execute(
        "SELECT COUNT(*) FROM parts p JOIN messages m ON m.id = p.message_id"
        " WHERE p.destination != m.recipient"
    ).fetchone()[0]
    assert mismatched == 0
    assert store.db.conn.execute("SELECT COUNT(*) FROM parts").fetchone()[0] == 8
