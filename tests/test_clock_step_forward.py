"""The wall clock stepped forward and then back: each validity ends as its SMS's real time says.

A step forward that no boot time passed in moves the validities of the SMS accepted before it, or
they expired at once, never sent; the step back that corrects it moves every validity back by the
whole step, so an SMS accepted before the clock ran ahead keeps its validity, and one accepted while
it was ahead (stamped on it) moves back by the whole step. Runs on a real SQLite file with injected
wall and boot-time clocks, below the network; the daemon's own in test_clock_step.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.test_clock_step import HOUR, accepted, due_at, looking, step


async def test_a_step_forward_and_its_correction_leave_validities_as_they_were(tmp_path: Path) -> None:
    # The clock runs 2 h ahead for a while (a wrong NTP answer, a VM's clock) and is put right.
    # Moved back by the whole correction, the SMS accepted before the clock ran ahead would
    # expire 2 h early ("validity period expired before it could be sent"); the one accepted
    # while it was ahead was stamped 2 h ahead, and moves back by the whole step.
    clock, mono, store, hk = await looking(tmp_path)
    before = await accepted(store)
    first = due_at(store, before)
    with capture_logs() as forward:
        assert await step(hk, clock, mono, 2 * HOUR) == 0.0  # only a step back is returned
    assert due_at(store, before) == (first[0], first[1] + 2 * HOUR)  # the wait is left: due sooner
    during = await accepted(store)
    ahead = due_at(store, during)
    with capture_logs() as back:
        assert await step(hk, clock, mono, -2 * HOUR) == pytest.approx(2 * HOUR)
    assert due_at(store, before) == pytest.approx((first[0] - 2 * HOUR, first[1]), abs=0.01)
    assert due_at(store, during) == pytest.approx((ahead[0] - 2 * HOUR, ahead[1] - 2 * HOUR), abs=0.01)
    assert await store.write(store.queue.expire_due) == []
    assert max(due_at(store, p)[0] for p in (before, during)) <= clock.t  # both due: none waits the step
    clock.t = first[1] - 1.0
    assert await store.write(store.queue.expire_due) == []  # an hour after it was accepted, and not before
    clock.t += 2.0
    assert len(await store.write(store.queue.expire_due)) == 1
    states = store.db.conn.execute("SELECT id, state FROM parts ORDER BY id").fetchall()
    assert states == [(before, "expired"), (during, "queued")]
    assert [(e["event"], e["seconds"], e["parts"]) for e in forward] == [
        ("clock.stepped_forward", 2 * HOUR, 1)
    ]
    assert back[0]["undoes_forward"] == pytest.approx(2 * HOUR)
    store.close()


async def test_a_step_back_undoes_the_latest_steps_forward_and_moves_the_rest(tmp_path: Path) -> None:
    # Forward 1 h, forward 1 h, back 3 h: one hour of the step back is the clock's own, on top of
    # correcting both. Each validity ends up moved back, from what it was given, by what the step
    # undoes of the clock its SMS was stamped on.
    clock, mono, store, hk = await looking(tmp_path)
    expiry: dict[int, float] = {}
    a = await accepted(store)  # on the right clock
    expiry[a] = due_at(store, a)[1]
    assert await step(hk, clock, mono, HOUR) == 0.0
    b = await accepted(store)  # 1 h ahead
    expiry[b] = due_at(store, b)[1]
    assert await step(hk, clock, mono, HOUR) == 0.0
    c = await accepted(store)  # 2 h ahead
    expiry[c] = due_at(store, c)[1]
    assert due_at(store, a)[1] == pytest.approx(expiry[a] + 2 * HOUR, abs=0.01)  # with both steps
    assert await step(hk, clock, mono, -3 * HOUR) == pytest.approx(3 * HOUR)
    moved = {p: expiry[p] - due_at(store, p)[1] for p in (a, b, c)}
    assert moved == pytest.approx({a: HOUR, b: 2 * HOUR, c: 3 * HOUR}, abs=0.01)
    # Both corrected: a later step back is the clock's alone, and moves every validity by all of it.
    assert await step(hk, clock, mono, -HOUR) == pytest.approx(HOUR)
    assert expiry[a] - due_at(store, a)[1] == pytest.approx(2 * HOUR, abs=0.01)
    store.close()


async def test_a_step_back_then_forward_then_back_moves_each_validity_by_its_clock(tmp_path: Path) -> None:
    # Back 1 h, forward 30 min, back 30 min (the forward step corrected). The first step back
    # moved the validity of the SMS accepted before it, but its acceptance time still reads on the
    # clock before that step: compared with the clock's readings, it seemed accepted while the
    # clock was 30 min ahead, and the correction took 30 min more off its life.
    clock, mono, store, hk = await looking(tmp_path)
    first = await accepted(store)
    expiry = due_at(store, first)[1]
    assert await step(hk, clock, mono, -HOUR) == pytest.approx(HOUR)
    assert due_at(store, first)[1] == pytest.approx(expiry - HOUR, abs=0.01)
    clock.t += 1.0 + HOUR / 2
    mono.t += 1.0
    ahead = await accepted(store)  # stamped 30 min ahead, before the look sees the step
    ahead_expiry = due_at(store, ahead)[1]
    assert await step(hk, clock, mono, 0.0) == 0.0  # the look finds the step forward: nothing moves
    assert await step(hk, clock, mono, -HOUR / 2) == pytest.approx(HOUR / 2)
    assert due_at(store, first)[1] == pytest.approx(expiry - HOUR, abs=0.01)
    assert due_at(store, ahead)[1] == pytest.approx(ahead_expiry - HOUR / 2, abs=0.01)
    assert await store.write(store.queue.expire_due) == []
    store.close()
