"""The retention purge (R-2.5): finished mail older than the retention goes, with its receipts and its
phones' long-SMS counters; the billing totals (usage) and what is still queued stay."""

from __future__ import annotations

from pathlib import Path

from gateway import retentionpurge
from gateway.smtp.accept import accept
from gateway.store.db import Store
from tests.test_store import Clock, acceptance


async def test_retention_purge_drops_details_and_keeps_usage(tmp_path: Path) -> None:
    # finished mail older than the retention goes; billing totals (usage) stay.
    clock = Clock()
    s = Store.open(tmp_path / "db.sqlite", clock=clock)
    a = acceptance(["+48601123456"])
    await accept(s, a)
    with s.db.transaction():
        s.accounts.add_usage(["account:1"], ["2023-11"], 1)
    (part,) = s.queue.claim_due(10)
    s.queue.mark_submitted(part.id, "main", "x1")
    s.queue.record_report("main", "x1", "delivered", None, "raw")
    await accept(s, acceptance(["+48601123457"]))  # still queued: must survive any purge
    with s.db.transaction():  # the counters of long SMS to both phones (a list of numbers kept for ever)
        s.db.conn.executemany(
            "INSERT INTO concat_refs (destination, next_ref) VALUES (?, 7)",
            [("+48601123456",), ("+48601123457",)],
        )
    clock.t += 91 * 86400
    assert await retentionpurge.purge_before(s, clock.t - 90 * 86400) == 1
    assert [r[0] for r in s.db.conn.execute("SELECT recipient FROM messages")] == ["+48601123457"]
    assert s.db.conn.execute("SELECT destination FROM concat_refs").fetchall() == [("+48601123457",)]
    assert s.db.conn.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0] == 0
    assert s.accounts.usage("account:1", "2023-11") == 1
