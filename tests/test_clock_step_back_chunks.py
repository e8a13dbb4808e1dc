"""A step back of days moves the times stamped before it in chunks of ids, each a short write, and a
crash between chunks is finished by the next start, no row moved twice (`gateway.stepmoves`).

Moved in one write, a step back of 30 days held the event loop ~27 s on a store of 28,575 SMS a day (SMTP
clients got no 250, SMSC links missed their enquire_link answers and dropped, the panel hung). Real
SQLite files; the housekeeping on an injected clock, and the real daemon in a process of its own killed
with SIGKILL in the middle of a move.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gateway import stepmoves
from gateway.store.db import Store
from tests.conftest import config_text, free_port
from tests.stepback_world import DAY, fill, times
from tests.test_clock_step import Monotonic, housekeeping
from tests.test_clock_step_answers import other_company, sent
from tests.test_conversations import World
from tests.test_process import wait_for_text
from tests.test_store import Clock

ROOT = Path(__file__).resolve().parents[1]
SMS, MOS = 3_000, 600
PLAN_KEY = "clock_step_move"  # `stepmoves.PLAN_KEY`: a move's plan and progress, in billing_state


async def step_back(path: Path, seconds: float) -> list[int]:
    """The housekeeping's look finding a step back of `seconds` on the store at `path`: the rows each of
    its writes changed, in order."""
    clock, mono = Clock(), Monotonic()
    store = Store.open(path, clock=clock)
    store.db.serve()
    hk = housekeeping(store, mono)
    await hk.check_clock()
    changed: list[int] = []
    write = store.write

    async def counted(work: Any, **kwargs: Any) -> Any:
        def counting() -> Any:
            before = store.db.conn.total_changes
            try:
                return work()
            finally:
                changed.append(store.db.conn.total_changes - before)

        return await write(counting, **kwargs)

    store.write = counted  # type: ignore[method-assign]
    clock.t -= seconds
    mono.t += 2.0
    assert await hk.check_clock() == pytest.approx(seconds + 2.0)
    store.close()
    return changed


def a_store(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    Store.open(path).close()
    fill(path, Clock().t, 3.0, SMS, MOS)
    return path


async def test_a_step_back_of_days_moves_in_short_writes_to_where_one_write_moved_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunked = a_store(tmp_path, "chunked.sqlite")
    whole = tmp_path / "whole.sqlite"
    shutil.copyfile(chunked, whole)
    before = times(chunked)
    # All in one chunk: the move as one write made it.
    monkeypatch.setattr(stepmoves, "FIRST_CHUNK", 10**9, raising=False)
    monkeypatch.setattr(stepmoves, "MOST", 10**9, raising=False)
    await step_back(whole, 2 * DAY)
    monkeypatch.setattr(stepmoves, "FIRST_CHUNK", 100, raising=False)
    monkeypatch.setattr(stepmoves, "MOST", 200, raising=False)
    writes = await step_back(chunked, 2 * DAY)
    moved = times(chunked)
    assert moved == times(whole)  # every row where the one write put it: none twice, none left
    assert moved != before
    # The move of some 7,000 rows (SMS, their parts' send times, conversations, MOs) in writes of at most
    # 200 ids (an SMS and its part: 2 rows each), besides the first: the waiting parts and the plan.
    assert len(writes) > 30, writes
    assert max(writes[1:]) <= 2 * 200 + 1, writes
    assert sum(writes) > 6_000, writes
    assert sqlite3.connect(chunked).execute(
        "SELECT COUNT(*) FROM billing_state WHERE key = ?", (PLAN_KEY,)
    ).fetchone() == (0,)


def plan_of(path: Path) -> dict[str, Any] | None:
    conn = sqlite3.connect(path, timeout=30)
    try:
        row = conn.execute("SELECT value FROM billing_state WHERE key = ?", (PLAN_KEY,)).fetchone()
    finally:
        conn.close()
    return None if row is None else json.loads(row[0])


def start(config: Path, out: Path, seconds: float, offset: float) -> subprocess.Popen[bytes]:
    """The daemon on a wall clock `offset` off the real one, stepped back `seconds` by SIGUSR1."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tests.stepback_world", str(config), str(seconds), "10", str(offset)]
    with out.open("ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    return proc


def stopped_world(tmp_path: Path, sms: int, mos: int) -> tuple[Path, Path]:
    """A config with no link up (nothing is sent) and its database filled over 3 days: (config, db)."""
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    (tmp_path / "state").mkdir()
    path = tmp_path / "state" / "smsgw.db"
    Store.open(path).close()
    fill(path, time.time(), 3.0, sms, mos)
    return config, path


def killed_mid_move(proc: subprocess.Popen[bytes], out: Path, path: Path) -> None:
    """Once `proc` is ready and has its reading, its clock stepped back 2 days and the daemon killed
    once the move's chunks have gone past the first 100 SMS."""
    wait_for_text(out, 60)
    while "ready" not in out.read_text():
        time.sleep(0.05)
    time.sleep(3.0)  # the clock check's first looks: its reading
    proc.send_signal(signal.SIGUSR1)  # the wall clock steps back 2 days
    deadline = time.monotonic() + 60
    while (plan := plan_of(path)) is None or plan["at"]["sms"] <= plan["floors"][0] + 100:
        assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # in the middle of the move
    proc.wait(30)


def stopped(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def test_a_move_killed_between_chunks_is_finished_by_the_next_start_each_row_moved_once(
    tmp_path: Path,
) -> None:
    config, path = stopped_world(tmp_path, SMS, MOS)
    before = times(path)
    out = tmp_path / "daemon.out"
    proc = start(config, out, 2 * DAY, 0.0)
    try:
        killed_mid_move(proc, out, path)
    finally:
        stopped(proc)
    cut = plan_of(path)
    assert cut is not None and cut["at"]["mo"] < cut["ends"]["mo"], cut  # the move was cut short
    half = times(path)
    assert half["messages"] != before["messages"], "no chunk committed before the kill"
    proc = start(config, out, 2 * DAY, -2 * DAY)  # started again on the stepped clock
    try:
        deadline = time.monotonic() + 60
        # Not read before the daemon has opened the database: a reader's last close empties and deletes
        # the WAL, which a start after a crash would find gone under it and refuse.
        while out.read_text().splitlines().count("ready") < 2:
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.05)
        while plan_of(path) is not None:
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        stopped(proc)
    after = times(path)
    assert after == expected(before, cut), out.read_text()[-3000:]


def expected(before: dict[str, list[tuple[float, ...]]], plan: dict[str, Any]) -> dict[str, Any]:
    """The times after a step back moved each row once, by the plan's step and bounds (no step forward
    to undo: each moves by the whole step, `senttimes.moved_to`): the acceptance, send and conversation
    times from `since` on, the MOs' from `mo_floor`; the waits of parts done stay."""
    step, since, first = plan["seconds"], plan["since"], plan["ends"]["sms"]
    share = 5.0 / (step + 5.0)

    def to(t: float) -> float:
        return t - step if t >= since + step + 5.0 else since + (t - since) * share

    def moved(t: float | None, row_id: int) -> float | None:
        return to(t) if t is not None and t >= since and row_id < first else t

    return {
        "messages": [(i, moved(c, i)) for i, c in before["messages"]],
        "parts": [(i, moved(s, i), n, e) for i, s, n, e in before["parts"]],  # a part per SMS, same ids
        "conversations": [(i, moved(last, 0), moved(began, 0)) for i, last, began in before["conversations"]],
        "mo": [(i, r - step, a - step) if r >= plan["mo_floor"] else (i, r, a) for i, r, a in before["mo"]],
    }


async def test_an_answer_during_a_move_goes_to_the_sms_sent_after_the_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Anna (acme) texts the phone; 10 s later the clock steps back 2 days and Bob (another company)
    # texts it. The phone answers while the SMS stamped before the step are being moved, Anna's (the
    # last of them) not yet: it reads 2 days after Bob's. The answer goes to the phone's newest SMS by
    # its id (`reached`), Bob's, as after the move; a time not moved yet only reads younger, which
    # lengthens a window, never cuts one short.
    for name in ("FIRST_CHUNK", "FEWEST", "MOST"):
        monkeypatch.setattr(stepmoves, name, 5)
    w = World(tmp_path)
    other_company(w)
    mono = Monotonic()
    hk = housekeeping(w.store, mono)
    await hk.check_clock()
    for n in range(200):  # the day's earlier SMS: the move takes some chunks
        sent(w, "anna@acme.example", f"Offer {n}", phone=f"+4860120{n:04d}")
    sent(w, "anna@acme.example", "ACME offer")
    w.now += 10.0 - 2 * DAY
    mono.t += 10.0
    sent(w, "bob@other.example", "Other invoice 12 due")
    w.now += 120.0  # the phone answers two minutes later, the clock check looking then
    mono.t += 120.0
    answered: list[asyncio.Task[None]] = []
    chunks_after: list[int] = []
    chunk = stepmoves.move_chunk

    def answering(*args: Any) -> Any:
        if not answered:  # the answer comes between the first chunk and the next
            answered.append(asyncio.get_running_loop().create_task(w.mo("Invoice 12 paid")))
        elif answered[0].done():
            chunks_after.append(1)
        return chunk(*args)

    monkeypatch.setattr(stepmoves, "move_chunk", answering)
    assert await hk.check_clock() == pytest.approx(2 * DAY)
    await answered[0]
    assert chunks_after  # handled while the move went on
    [(_kind, rcpt, msg)] = w.outbox()
    assert rcpt == "bob@other.example", (rcpt, msg.get_content())
    assert "Other invoice 12 due" in msg.get_content()


async def test_a_stops_last_look_leaves_a_move_to_the_next_start(tmp_path: Path) -> None:
    # The stop's last look finds a step back of 2 days: it moves the queue's times and keeps the plan, and
    # the stop does not wait for the rest (tens of seconds for a step of a month): the next start does it.
    path = a_store(tmp_path, "db.sqlite")
    clock, mono = Clock(), Monotonic()
    store = Store.open(path, clock=clock)
    store.db.serve()
    hk = housekeeping(store, mono)
    await hk.check_clock()
    clock.t -= 2 * DAY
    mono.t += 2.0
    await hk.check_clock(keep=True)
    assert plan_of(path) is not None
    again = housekeeping(store, mono)  # the next start, on the same store
    mono.t += 2.0
    clock.t += 2.0
    assert await again.check_clock() == 0.0
    assert plan_of(path) is None
    store.close()


async def test_a_plan_that_cannot_be_read_does_not_stop_the_start(tmp_path: Path) -> None:
    # A plan edited by hand (or from a version that kept another shape) failed every start.
    path = a_store(tmp_path, "db.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO billing_state (key, value) VALUES (?, ?)", (PLAN_KEY, '{"seconds": "x"}'))
    store = Store.open(path, clock=Clock())
    store.db.serve()
    hk = housekeeping(store, Monotonic())
    assert await hk.check_clock() == 0.0
    store.close()
