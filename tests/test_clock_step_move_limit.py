"""The hourly answer limit while a step back's move is under way (`gateway.stepmoves`): the answers it
has not moved yet count with the step applied (`gateway.store.stepchunks.mo_still_to_move`).

The move of a step of days takes seconds to minutes, and one a stop left, or a crash cut short, runs
after the next start listens. Meanwhile the MOs stamped before the step read younger by it: the answers
of the hour before a step back of an hour counted as within the hour, and the phone's next answer was
kept by the limit. Through the daemon, its built-in SMSC and a real SMTP sink on an injected clock; the
move, kept in the store by a stop's last look, waits in the restarted daemon until the answer is handled.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway import housekeeping as housekeeping_module
from gateway import stepmoves
from gateway.clockcheck import ClockCheck
from gateway.store.db import Store
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_clock_step import HOUR, Monotonic, housekeeping
from tests.test_kept_answers import T0, answer, flood_config, states


def plan_of(path: Path) -> dict[str, Any] | None:
    conn = sqlite3.connect(path, timeout=30)
    try:
        row = conn.execute("SELECT value FROM billing_state WHERE key = ?", (stepmoves.PLAN_KEY,)).fetchone()
    finally:
        conn.close()
    return None if row is None else json.loads(row[0])


async def stepped_back_at_the_stop(path: Path, now: list[float]) -> None:
    """The clock steps back an hour and a stop's last look finds it: it moves the queue's times and keeps
    the plan of the rest for the next start (as `Daemon`'s stop does, with `keep`)."""
    store = Store.open(path, clock=lambda: now[0])
    store.db.serve()
    mono = Monotonic()
    hk = housekeeping(store, mono)
    await hk.check_clock()
    now[0] += 2.0 - HOUR
    mono.t += 2.0
    assert await hk.check_clock(keep=True) == pytest.approx(HOUR)
    store.close()


async def test_an_answer_while_a_step_backs_move_waits_counts_the_hour_before_the_step_as_past(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two answers; 70 minutes later the clock steps back an hour, found as the daemon stops; restarted,
    # the phone answers before its move reaches the MOs. Read on their old clock, the two answers seemed
    # 10 minutes old, and the third was kept by the limit of 2 an hour: it is mailed, as after the move.
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    answered = asyncio.Event()
    finish = ClockCheck._finish_move

    async def waiting(self: ClockCheck) -> tuple[int, int]:  # the move waits for the answer
        await answered.wait()
        return await finish(self)

    held: Callable[[ClockCheck], Awaitable[tuple[int, int]]] = waiting
    now = [T0]
    relay = free_port()
    cfg = flood_config(tmp_path, relay, "mails_per_phone_per_hour = 2")
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, lambda: now[0]) as gw:
            core = gw.daemon.simulator.core
            assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Czy 10:00 pasuje?"))).error is None
            await gw.until(lambda: len(core.records) == 1)
            for text in ("Tak", "Będę"):
                now[0] += 60.0
                await answer(gw, text)
            await sink.wait(2)
            path = gw.store.path
        now[0] += 68 * 60.0
        await stepped_back_at_the_stop(path, now)
        plan = plan_of(path)
        assert plan is not None and plan["at"]["mo"] < plan["ends"]["mo"]  # no MO moved yet
        monkeypatch.setattr(ClockCheck, "_finish_move", held)
        async with running_gateway(cfg, lambda: now[0]) as gw:
            now[0] += 60.0
            await answer(gw, "Jednak o 11")
            assert plan_of(path) is not None  # handled while the move waited
            assert states(gw) == ["mailed"] * 3
            answered.set()
            await gw.until(lambda: plan_of(path) is None)
            await sink.wait(3)
