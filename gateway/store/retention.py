"""The retention purge (SPEC R-2.5): detailed records of finished mail older than the retention go.

It runs on the event loop in small chunks, each one its own piece of the shared `write()`, and
yields between chunks, so that SMTP accepts, submit answers and DLRs keep being committed (and
acknowledged) while a large purge runs. Each chunk selects and deletes in the same transaction, so
a message an admin re-queued a moment before is never deleted. Usage totals are never purged.
Conversations (R-3) go once their last SMS is older than the retention plus the reply window (the
account's own, if it sets one), so an answer that may still arrive always finds its conversation.
Premium MOs and answers (R-4) are money records and stay; only their texts go (an MO still waiting
for its client keeps its text). A phone's concatenation counter goes with its last message.
"""

from __future__ import annotations

import asyncio

from gateway.premium.repo import PremiumRepo
from gateway.store.db import Store
from gateway.store.settling import FINAL_PART

CHUNK = 200  # emails per chunk: a few milliseconds of work between two turns of the loop

_FINAL = f"({', '.join(repr(s) for s in FINAL_PART)})"
# Older than the retention cutoff by more than the account's reply window (or the installation's).
_OLD_CONVERSATION = (
    "last_mt_at < ? - COALESCE((SELECT a.reply_window_days * 86400 FROM accounts a"
    " WHERE a.id = conversations.account_id), ?)"
)


async def purge_before(store: Store, cutoff: float, *, chunk: int = CHUNK, reply_window: float = 0.0) -> int:
    """Delete finished mail (and its messages, parts, DLRs) received before `cutoff`; return the count.

    Conversations are kept `reply_window` seconds (or their account's reply window) longer than the rest.
    """
    removed = 0
    after = 0
    while True:
        count, after = await store.write(lambda a=after: _purge_emails(store, cutoff, a, chunk))
        removed += count
        if after == 0:
            break
        await asyncio.sleep(0)
    for table, where in (
        ("dlrs", "part_id IS NULL AND received_at < ?"),
        ("mo", "received_at < ?"),
        ("outbox", "created_at < ? AND state IN ('sent', 'failed')"),
    ):

        def piece(t: str = table, w: str = where) -> int:
            return _purge_rows(store, t, w, (cutoff,), chunk)

        while await store.write(piece) >= chunk:
            await asyncio.sleep(0)
    while (
        await store.write(
            lambda: _purge_rows(store, "conversations", _OLD_CONVERSATION, (cutoff, reply_window), chunk)
        )
        >= chunk
    ):
        await asyncio.sleep(0)
    premium = PremiumRepo(store.db, store.clock)
    while await store.write(lambda: premium.forget_texts(cutoff, chunk)) >= chunk:
        await asyncio.sleep(0)
    after = 0
    while after := await store.write(lambda a=after: _purge_concat_refs(store, a, chunk)):
        await asyncio.sleep(0)
    return removed


def _purge_emails(store: Store, cutoff: float, after: int, limit: int) -> tuple[int, int]:
    """One chunk of old emails after id `after`; returns (emails deleted, last id seen or 0 at the end)."""
    conn = store.db.conn
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT e.id FROM emails e WHERE e.id > ? AND e.received_at < ? AND NOT EXISTS ("
            f" SELECT 1 FROM messages m WHERE m.email_id = e.id AND m.state NOT IN {_FINAL})"
            " ORDER BY e.id LIMIT ?",
            (after, cutoff, limit),
        )
    ]
    if not ids:
        return 0, 0
    marks = ",".join("?" * len(ids))
    msg_ids = f"SELECT id FROM messages WHERE email_id IN ({marks})"
    part_ids = f"SELECT id FROM parts WHERE message_id IN ({msg_ids})"
    conn.execute(f"DELETE FROM dlrs WHERE part_id IN ({part_ids})", ids)
    conn.execute(f"DELETE FROM parts WHERE message_id IN ({msg_ids})", ids)
    conn.execute(f"DELETE FROM messages WHERE email_id IN ({marks})", ids)
    conn.execute(f"DELETE FROM emails WHERE id IN ({marks})", ids)
    return len(ids), ids[-1]


def _purge_rows(store: Store, table: str, where: str, args: tuple[float, ...], limit: int) -> int:
    return store.db.conn.execute(
        f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} ORDER BY id LIMIT ?)",
        (*args, limit),
    ).rowcount


def _purge_concat_refs(store: Store, after: int, limit: int) -> int:
    """Forget the concatenation counter of phones with no message kept; the rowid to go on from, or 0.

    A reference only has to differ from those a phone may still be joining (minutes), but each
    phone ever sent a long SMS kept its row for ever: a list of numbers beyond the retention.
    """
    conn = store.db.conn
    rows = conn.execute(
        "SELECT rowid, destination FROM concat_refs WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, limit)
    ).fetchall()
    gone = [
        (rowid,)
        for rowid, phone in rows
        if conn.execute(
            "SELECT 1 FROM messages INDEXED BY messages_recipient_id WHERE recipient = ? LIMIT 1", (phone,)
        ).fetchone()
        is None
    ]
    conn.executemany("DELETE FROM concat_refs WHERE rowid = ?", gone)
    return rows[-1][0] if len(rows) == limit else 0
