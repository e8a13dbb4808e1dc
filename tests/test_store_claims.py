# ruff: noqa: F811  (the tests take test_store's `store` fixture, imported by name)
"""Claiming due SMS: a claim's work (in SQLite VM steps, which do not depend on the machine) does not grow
with the queue or with other accounts' mail, and due SMS go oldest first. Split from test_store.py by
subject; `vm_steps` stays there, as other test modules import it."""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

from gateway.smtp.accept import accept
from gateway.store.db import Store
from tests.test_store import (
    Clock,
    acceptance,
    store,  # noqa: F401  (the fixture)
    vm_steps,
)


async def test_claim_work_does_not_grow_with_the_queue(tmp_path: Path) -> None:
    # Restart with 100,000 SMS queued: a claim must cost index steps per part claimed, not per
    # part waiting (a planner choice once made each claim walk the whole queue: seconds per claim).
    # Measured in SQLite VM instructions, which do not depend on the machine's speed.
    async def claim_steps(queued: int, name: str) -> int:
        s = Store.open(tmp_path / name, clock=Clock())
        account = s.accounts.add_account("acme").id
        for start in range(0, queued, 100):
            base = acceptance([f"+486011{i:05d}" for i in range(start, start + 100)])
            await accept(s, dataclasses.replace(base, account_id=account))
        steps, claimed = vm_steps(s.db.conn, lambda: s.queue.claim_due(10))
        assert len(claimed) == 10
        s.close()
        return steps

    small = await claim_steps(200, "small.sqlite")
    large = await claim_steps(6000, "large.sqlite")
    assert large < 3 * small + 50, (small, large)


async def test_a_claim_does_not_walk_an_accounts_mail_that_is_not_due(tmp_path: Path) -> None:
    # A campaign of 100,000 SMS held for quiet hours (or deferred, or a suspended account's) stays
    # in the account's index of unfinished messages: each claim walked all of them looking for due
    # parts, 1.4 M VM steps a claim (bench/statements.py --backlog 100000). The account's due SMS
    # past the walk come from the due index, in due order. Measured in SQLite VM instructions.
    async def claim_steps(held: int, name: str) -> tuple[int, int]:
        clock = Clock()
        s = Store.open(tmp_path / name, clock=clock)
        account = s.accounts.add_account("acme").id
        for start in range(0, held + 10, 500):
            base = acceptance([f"+48601{i:06d}" for i in range(start, min(start + 500, held + 10))])
            await accept(s, dataclasses.replace(base, account_id=account))
        s.db.conn.execute(  # the oldest `held` wait for tomorrow; the last 10 are due
            "UPDATE parts SET state = 'deferred', next_attempt_at = ? WHERE id <= ?", (clock.t + 86400, held)
        )
        steps, claimed = vm_steps(s.db.conn, lambda: s.queue.claim_due(10))
        s.close()
        return steps, len(claimed)

    small, small_claimed = await claim_steps(2000, "small.sqlite")
    large, large_claimed = await claim_steps(20000, "large.sqlite")
    assert small_claimed == large_claimed == 10
    assert large < 2 * small + 50, (small, large)


async def test_a_claim_does_not_read_other_accounts_due_parts_for_an_account_with_none(
    tmp_path: Path,
) -> None:
    # Account a's campaign is deferred (a throttling SMSC) with more than a claim used to walk, and b's
    # is due behind links that are full: each claim looked for a's due parts on the queue's due
    # index, past every due part of b (160,000 VM steps a claim with 20,000, linear in them). The
    # index of waiting parts by account (migration 35) finds a's in a few steps.
    async def claim_steps(others_due: int, name: str) -> tuple[int, int]:
        clock = Clock()
        s = Store.open(tmp_path / name, clock=clock)
        a = s.accounts.add_account("a").id
        b = s.accounts.add_account("b").id
        for start in range(0, 3000, 500):
            base = acceptance([f"+48601{i:06d}" for i in range(start, start + 500)])
            await accept(s, dataclasses.replace(base, account_id=a))
        s.db.conn.execute("UPDATE parts SET state = 'deferred', next_attempt_at = ?", (clock.t + 86400,))
        for start in range(0, others_due, 500):
            base = acceptance([f"+48602{i:06d}" for i in range(start, start + 500)])
            await accept(s, dataclasses.replace(base, account_id=b))
        steps, claimed = vm_steps(s.db.conn, lambda: s.queue.claim_due(10))
        s.close()
        return steps, len(claimed)

    small, small_claimed = await claim_steps(1000, "small.sqlite")
    large, large_claimed = await claim_steps(20000, "large.sqlite")
    assert small_claimed == large_claimed == 10
    assert large < 2 * small + 20, (small, large)


async def test_a_claim_does_not_look_at_accounts_with_nothing_waiting(tmp_path: Path) -> None:
    # A gateway of 1,000 companies, ten with SMS waiting: each claim ran two statements for every
    # account of the accounts table (2,002 statements, 12 ms a claim, tens of claims a second at
    # full load). The accounts with parts waiting come from the index by account itself.
    async def claim_cost(accounts: int, name: str) -> tuple[int, int, int]:
        s = Store.open(tmp_path / name, clock=Clock())
        ids = [s.accounts.add_account(f"company{i}").id for i in range(accounts)]
        for k, account in enumerate(ids[:: accounts // 10]):
            base = acceptance([f"+48601{k:06d}", f"+48602{k:06d}"])
            await accept(s, dataclasses.replace(base, account_id=account))
        statements: list[str] = []
        s.db.conn.set_trace_callback(statements.append)
        steps, claimed = vm_steps(s.db.conn, lambda: s.queue.claim_due(10))
        s.db.conn.set_trace_callback(None)
        s.close()
        return len(statements), steps, len({p.message_id for p in claimed})

    few, few_steps, few_claimed = await claim_cost(10, "few.sqlite")
    many, many_steps, many_claimed = await claim_cost(1000, "many.sqlite")
    assert few_claimed == many_claimed == 10  # one SMS from each account's two first: its turn
    assert many == few, (few, many)
    assert many_steps < 2 * few_steps + 20, (few_steps, many_steps)


async def test_a_claim_reads_of_each_account_what_it_can_win(tmp_path: Path) -> None:
    # 50 accounts with a campaign each, a claim of 200: each account can win 4 of them, but each
    # claim read twice the claim of every account (20,800 rows into Python; 0.14-0.3 s of the event
    # loop with 100 accounts at a claim of 500). After the first claim it reads about what the
    # accounts it found can win.
    s = Store.open(tmp_path / "many.sqlite", clock=Clock())
    for k in range(50):
        account = s.accounts.add_account(f"company{k}").id
        base = acceptance([f"+4860{k:02d}{i:05d}" for i in range(400)])
        await accept(s, dataclasses.replace(base, account_id=account))
    costs = []
    for _ in range(3):
        steps, claimed = vm_steps(s.db.conn, lambda: s.queue.claim_due(200))
        costs.append(steps)
        per_account = collections.Counter(p.destination[:7] for p in claimed)
        assert len(claimed) == 200 and set(per_account.values()) == {4}, per_account
        s.db.conn.execute("UPDATE parts SET state = 'queued' WHERE state = 'active'")
    s.close()
    assert costs[1] < costs[0] / 4 and costs[2] < costs[0] / 4, costs


async def test_due_sms_go_oldest_first_whatever_their_due_times(store: Store) -> None:
    # Three SMS to one phone, all due; the two older ones were put back a moment apart (a lost
    # link, a throttle), the first after the third: by due time a claim of two took "1, 3", and the
    # phone got "Message 1, 3, 2" (tests/test_faults.py saw it once under load). Oldest first.
    await accept(store, acceptance(["+48601123456"]))
    await accept(store, acceptance(["+48601123456"]))
    await accept(store, acceptance(["+48601123456"]))
    now = store.clock()
    for pid, due in ((1, now - 10), (2, now - 1), (3, now - 5)):
        store.db.conn.execute(
            "UPDATE parts SET state = 'deferred', next_attempt_at = ? WHERE id = ?", (due, pid)
        )
    assert [p.id for p in store.queue.claim_due(2)] == [1, 2]
