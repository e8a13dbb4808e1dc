"""R-2.4's window read without sorting it (`gateway.store.failureshare`): the same (failed, judged) as
the one statement it replaced, over random histories of accounts side by side (every final and
waiting state, SMS expired with and without a part an SMSC took, resumes, windows of 1 to 500), and
fewer SQLite VM steps for a window of 500 with 1 failure in 100. A failed SMS is judged only when an SMSC
failed a part of it (refused it, or reported it failed): one the gateway ended before it went (opted
out, no route) is not, as one expired in the queue is not."""

from __future__ import annotations

import random
from pathlib import Path

from gateway.store.db import Store
from tests.test_store import Clock, vm_steps

# The statement `PolicyRepo.failure_share` ran until the window was read without sorting it.
_AFTER = "COALESCE((SELECT resumed_after_message FROM accounts WHERE id = :account), 0)"
_ARM = (
    "SELECT id, state FROM (SELECT id, state FROM messages m WHERE account_id = :account"
    " AND state = '{state}' AND id > {after} AND id > 0{more} ORDER BY id DESC LIMIT :last)"
)
_TOOK = " AND EXISTS (SELECT 1 FROM parts p WHERE p.message_id = m.id AND p.smsc_id IS NOT NULL)"
_REFUSED = (
    " AND EXISTS (SELECT 1 FROM parts p WHERE p.message_id = m.id AND p.state = 'failed'"
    " AND p.link IS NOT NULL)"
)
_SETTLED = " UNION ALL ".join(
    _ARM.format(state=s, after=_AFTER, more=more) for s, more in (("delivered", ""), ("failed", _REFUSED))
)
_FLOOR = f"MAX({_AFTER}, (SELECT CASE WHEN COUNT(*) = :last THEN MIN(id) ELSE 0 END FROM settled))"
OLD = (
    f"WITH settled AS MATERIALIZED (SELECT id, state FROM ({_SETTLED} ORDER BY id DESC LIMIT :last))"
    " SELECT COUNT(*) FILTER (WHERE state != 'delivered'), COUNT(*)"
    f" FROM (SELECT id, state FROM settled UNION ALL {_ARM.format(state='expired', after=_FLOOR, more=_TOOK)}"
    " ORDER BY id DESC LIMIT :last)"
)
STATES = ["delivered"] * 16 + ["failed", "expired", "expired", "queued", "hold", "cancelled", "unreported"]


def history(store: Store, accounts: list[int], rnd: random.Random, n: int, failing: float) -> None:
    """`n` messages of the accounts, interleaved; an expired one has a part an SMSC took or not, a
    failed one a part an SMSC refused (its link named, an SMSC's id or not) or one the gateway ended
    (no link: opted out, no route)."""
    conn = store.db.conn
    with store.db.transaction():
        for i in range(n):
            account = rnd.choice(accounts)
            state = rnd.choice(STATES) if rnd.random() < failing else "delivered"
            email = conn.execute(
                "INSERT INTO emails (account_id, mail_from, text, received_at) VALUES (?, 'a@b.c', 'x', 1)",
                (account,),
            ).lastrowid
            message = conn.execute(
                "INSERT INTO messages (email_id, account_id, recipient, source, text, coding, parts_total,"
                " state, created_at, expires_at) VALUES (?, ?, ?, '+48100200300', 'x', 0, 1, ?, 1, 2)",
                (email, account, f"+486019{i:05d}", state),
            ).lastrowid
            if state != "queued" and rnd.random() < 0.7:
                smsc_id = None if rnd.random() < 0.3 else f"s{i}"
                link = "main" if smsc_id is not None or rnd.random() < 0.5 else None
                conn.execute(
                    "INSERT INTO parts (message_id, seq, state, next_attempt_at, expires_at, destination,"
                    " source, data_coding, payload, udh, text, smsc_id, link) VALUES (?, 1, ?, 1, 2, ?,"
                    " '+48100200300', 0, X'', X'', 'x', ?, ?)",
                    (message, state, f"+486019{i:05d}", smsc_id, link),
                )


def old_share(store: Store, account: int, last: int) -> tuple[int, int]:
    row = store.db.conn.execute(OLD, {"account": account, "last": last}).fetchone()
    return int(row[0]), int(row[1])


def test_the_window_is_read_as_the_statement_before_read_it(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    rnd = random.Random(15)
    for case in range(40):
        names = [f"a{case}x{k}" for k in range(3)]
        for name in names:
            store.accounts.add_account(name)
        accounts = [store.accounts.get_account(name).id for name in names]
        history(store, accounts, rnd, rnd.choice([0, 3, 40, 300, 900]), rnd.choice([0.02, 0.2, 0.9]))
        for account in accounts:
            if rnd.random() < 0.3:  # resumed after some message of its (or after none)
                ids = [
                    r[0]
                    for r in store.db.conn.execute("SELECT id FROM messages WHERE account_id = ?", (account,))
                ]
                with store.db.transaction():
                    store.db.conn.execute(
                        "UPDATE accounts SET resumed_after_message = ? WHERE id = ?",
                        (rnd.choice(ids) if ids else 0, account),
                    )
            for last in (1, 2, 7, 50, 500, rnd.randint(1, 600)):
                assert store.policy.failure_share(account, last) == old_share(store, account, last), (
                    case,
                    account,
                    last,
                )
    store.close()


def test_a_window_of_500_with_few_failures_takes_fewer_steps(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    store.accounts.add_account("acme")
    acme = store.accounts.get_account("acme").id
    history(store, [acme], random.Random(1), 3000, 0.01)
    new_steps, new = vm_steps(store.db.conn, lambda: store.policy.failure_share(acme, 500))
    old_steps, old = vm_steps(store.db.conn, lambda: old_share(store, acme, 500))
    assert new == old
    assert new_steps * 2 < old_steps, (new_steps, old_steps)
    store.close()


def test_the_history_before_a_resume_is_not_walked(tmp_path: Path) -> None:
    # The window starts after the last resume: 3,000 messages before it are not read, as none are
    # while the account has sent few since.
    def steps(before: int, name: str) -> tuple[int, tuple[int, int]]:
        store = Store.open(tmp_path / name, clock=Clock())
        store.accounts.add_account("acme")
        acme = store.accounts.get_account("acme").id
        history(store, [acme], random.Random(2), before, 0.5)
        with store.db.transaction():
            store.db.conn.execute(
                "UPDATE accounts SET resumed_after_message = (SELECT MAX(id) FROM messages) WHERE id = ?",
                (acme,),
            )
        history(store, [acme], random.Random(3), 20, 0.5)
        counted = vm_steps(store.db.conn, lambda: store.policy.failure_share(acme, 500))
        assert counted[1] == old_share(store, acme, 500)
        store.close()
        return counted

    small, _ = steps(10, "small.sqlite")
    large, _ = steps(3000, "large.sqlite")
    assert large < 2 * small + 20, (small, large)
