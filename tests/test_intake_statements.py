"""The intake's per-number reads that cost a statement a mail and answer the same for nearly every mail:
the account's own opt-outs at RCPT. Answered from what the settings cache reads once a loop turn, and
still seen at the next turn when another process committed a change (the daemon's intake workers each
hold their own connection). Counted in statements on real SQLite files, two connections to one file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.store.db import Store

NOW = 1_800_000_000.0
PHONES = ["+48601000001", "+48601000002", "+48601000003"]


@contextmanager
def statements(conn: sqlite3.Connection) -> Iterator[list[str]]:
    run: list[str] = []
    conn.set_trace_callback(run.append)
    try:
        yield run
    finally:
        conn.set_trace_callback(None)


async def next_turn() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def opened(path: Path, clock: Callable[[], float] = lambda: NOW) -> Store:
    return Store.open(path, clock=clock)


async def test_an_accounts_own_optouts_are_read_from_the_settings_cache(tmp_path: Path) -> None:
    path = tmp_path / "smsgw.db"
    worker, other = opened(path), opened(path)
    try:
        acme = worker.accounts.add_account("acme").id
        await next_turn()
        assert worker.policy.optout_by(PHONES[0], acme) == []  # the list read whole, once
        with statements(worker.db.conn) as run:
            assert worker.policy.optout_by(PHONES[1], acme) == []
        assert run == []  # was one statement a number, by the list's unique index
        # The account's admin lists a number on the panel (the daemon's own process): the worker's
        # next turn reads the new generation and the list again.
        assert other.policy.add_account_optout(acme, PHONES[2])
        await next_turn()
        assert worker.policy.optout_by(PHONES[2], acme) == ["account"]
        assert worker.policy.optout_by(PHONES[2], None) == []
    finally:
        worker.close()
        other.close()
