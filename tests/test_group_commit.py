"""Group commit without a savepoint per piece: a failing piece still fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.store.db import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "db.sqlite")
    s.db.conn.execute("CREATE TABLE t (v TEXT)")
    return s


def insert(store: Store, value: str, runs: list[str] | None = None, fail: bool = False) -> Callable[[], None]:
    def work() -> None:
        if runs is not None:
            runs.append(value)
        store.db.conn.execute("INSERT INTO t VALUES (?)", (value,))
        if fail:
            raise ValueError(value)

    return work


def rows(store: Store) -> list[str]:
    return [r[0] for r in store.db.conn.execute("SELECT v FROM t ORDER BY v")]


async def test_a_batch_of_one_piece_has_no_savepoint(store: Store) -> None:
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    await store.write(insert(store, "a"))
    store.db.conn.set_trace_callback(None)
    assert statements == ["BEGIN IMMEDIATE", "INSERT INTO t VALUES ('a')", "COMMIT"]


async def test_replayable_pieces_share_the_transaction_without_savepoints(store: Store) -> None:
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    await asyncio.gather(*(store.write(insert(store, v), replayable=True) for v in "abc"))
    store.db.conn.set_trace_callback(None)
    assert not [s for s in statements if "SAVEPOINT" in s or "RELEASE" in s]
    assert statements.count("COMMIT") == 1
    assert rows(store) == ["a", "b", "c"]


async def test_a_failing_replayable_piece_is_rolled_back_alone(store: Store) -> None:
    # The pieces before it ran without savepoints: all is rolled back, and they run again.
    runs: list[str] = []
    results = await asyncio.gather(
        store.write(insert(store, "a", runs), replayable=True),
        store.write(insert(store, "b", runs, fail=True), replayable=True),
        store.write(insert(store, "c", runs)),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    assert rows(store) == ["a", "c"]
    assert runs == ["a", "b", "a", "b", "c"]


async def test_a_piece_that_may_not_run_twice_is_never_replayed(store: Store) -> None:
    runs: list[str] = []
    results = await asyncio.gather(
        store.write(insert(store, "a", runs)),
        store.write(insert(store, "b", runs, fail=True), replayable=True),
        store.write(insert(store, "c", runs), replayable=True),
        return_exceptions=True,
    )
    assert isinstance(results[1], ValueError)
    assert rows(store) == ["a", "c"]
    assert runs == ["a", "b", "c"]


async def test_a_failing_first_piece_fails_alone_and_the_rest_commits(store: Store) -> None:
    runs: list[str] = []
    results = await asyncio.gather(
        store.write(insert(store, "a", runs, fail=True)),
        store.write(insert(store, "b", runs)),
        store.write(insert(store, "c", runs), replayable=True),
        return_exceptions=True,
    )
    assert isinstance(results[0], ValueError)
    assert results[1:] == [None, None]
    assert rows(store) == ["b", "c"]
    assert runs == ["a", "b", "c"]
