"""Many parts due to end at once: after a long SMSC outage, or on the first start after an upgrade
from a version that left parts with no delivery report `submitted` for ever. Ending them (with their
notices) in one write held the event loop for minutes (no SMTP greeting; systemd's watchdog killed
the daemon, whose restart began the same write again). The daemon ends them a batch per write, and
a confirmation long past its day is not mailed. A real SQLite file on an injected clock, the real
housekeeping and notifier."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from gateway.housekeeping import Housekeeping
from gateway.notifier import Notifier
from gateway.smtp.accept import accept
from gateway.store.db import Store
from gateway.store.queue import EXPIRE_BATCH, RECEIPT_WAIT_SECONDS
from tests.conftest import free_port, make_config
from tests.test_store import Clock, acceptance, vm_steps

VALIDITY = 3600.0  # `acceptance()`'s
DAY = 24 * 3600.0


def ended(store: Store) -> int:
    sql = "SELECT COUNT(*) FROM parts WHERE state IN ('expired', 'unreported')"
    return int(store.db.conn.execute(sql).fetchone()[0])


async def queued_and_sent(store: Store, count: int, account: int | None = None) -> None:
    """`count` SMS waiting for a link, and `count` the SMSC took whose report never comes."""
    numbers = [f"+486010{i:05d}" for i in range(2 * count)]
    await accept(store, dataclasses.replace(acceptance(numbers), account_id=account))
    for part in store.queue.claim_due(count):
        store.queue.mark_submitted(part.id, "main", f"x{part.id}")


def housekeeping(tmp_path: Path, store: Store) -> Housekeeping:
    cfg = make_config(tmp_path, smsc_port=free_port())
    unused: Any = None  # expire needs the store, the notifier and (for stale MO segments) nothing else
    return Housekeeping(store, Notifier(store, cfg), unused, dict, tmp_path / "status.json")


async def test_a_mass_expiry_ends_a_batch_per_write(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    count = 2 * EXPIRE_BATCH + 50
    await queued_and_sent(store, count)
    store.db.serve()  # from here on, as in the daemon: every write through `store.write`
    clock.t += VALIDITY + RECEIPT_WAIT_SECONDS + 1
    hk = housekeeping(tmp_path, store)
    hk.started_at = clock.t  # no stale MO segments to look at
    writes: list[int] = []
    write = store.write

    async def counted(fn: Any, **kwargs: Any) -> Any:
        before = ended(store)
        try:
            return await write(fn, **kwargs)
        finally:
            writes.append(ended(store) - before)

    store.write = counted  # type: ignore[method-assign]
    await hk.expire()
    assert ended(store) == 2 * count  # every part ended, queued and sent alike
    assert max(writes) <= EXPIRE_BATCH, writes  # one write ended all 900 before
    assert sum(writes) == 2 * count and len([w for w in writes if w]) >= 4
    store.close()


async def test_a_confirmation_long_past_its_day_is_not_mailed(tmp_path: Path) -> None:
    # An account that wants a mail for every outcome, and SMS an older version left `submitted`
    # months ago: 100,000 "sent; no delivery report" mails about them came on the upgrade.
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    acme = store.accounts.add_account("acme").id
    store.accounts.update_account("acme", dlr_mail="all")
    await queued_and_sent(store, 3, account=acme)
    old = [r[0] for r in store.db.conn.execute("SELECT id FROM parts WHERE state = 'submitted' LIMIT 2")]
    with store.db.transaction():  # sent a month ago
        store.db.conn.executemany(
            "UPDATE parts SET expires_at = expires_at - ? WHERE id = ?", [(30 * DAY, pid) for pid in old]
        )
    store.db.serve()
    clock.t += VALIDITY + RECEIPT_WAIT_SECONDS + 1
    hk = housekeeping(tmp_path, store)
    hk.started_at = clock.t
    await hk.expire()
    states = dict(store.db.conn.execute("SELECT state, COUNT(*) FROM messages GROUP BY state").fetchall())
    assert states == {"expired": 3, "unreported": 3}
    kinds = [r[0] for r in store.db.conn.execute("SELECT kind FROM outbox ORDER BY id")]
    # One bounce naming the three SMS of the mail never sent (`gateway.bouncegroup`), one notice for
    # the SMS of yesterday; none a month late.
    assert sorted(kinds) == ["dsn-group", "unreported"], kinds
    (bounced,) = store.db.conn.execute("SELECT bounced FROM outbox WHERE kind = 'dsn-group'").fetchone()
    assert len(bounced.split(",")) == 3
    store.close()


async def test_the_expiry_does_not_read_the_sms_still_waiting_within_their_validity(tmp_path: Path) -> None:
    # A campaign queued behind an SMSC outage: every 15 s the expiry looked for waiting SMS past
    # their validity on the due index, which is ordered by the next attempt, so it read every waiting
    # part (0.1 s of the event loop at 200,000, 0.6 s at a million). By validity (migration 34) it
    # reads only those that end. Measured in SQLite VM instructions, which do not depend on the machine.
    async def expiry_steps(waiting: int, name: str) -> tuple[int, int]:
        clock = Clock()
        store = Store.open(tmp_path / name, clock=clock)
        for start in range(0, waiting, 500):
            numbers = [f"+48601{i:06d}" for i in range(start, start + 500)]
            await accept(store, acceptance(numbers))
        store.db.conn.execute(  # the oldest ten ended an hour ago; the rest wait (some retrying)
            "UPDATE parts SET expires_at = ? WHERE id <= 10", (clock.t - 3600,)
        )
        store.db.conn.execute("UPDATE parts SET state = 'deferred' WHERE id % 3 = 0")
        steps, (_finished, parts) = vm_steps(store.db.conn, lambda: store.queue.expire_batch(EXPIRE_BATCH))
        store.close()
        return steps, parts

    small, small_ended = await expiry_steps(1000, "small.sqlite")
    large, large_ended = await expiry_steps(20000, "large.sqlite")
    assert small_ended == large_ended == 10
    assert large < 2 * small + 20, (small, large)
