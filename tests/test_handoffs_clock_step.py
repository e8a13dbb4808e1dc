"""The dispatcher's hand-off times (`gateway.handoffs`) move with a step of the clock back, as the parts'
stored claim times do (`gateway.store.clockstep.shift_parts`).

They are wall-clock readings. Left on the clock before a step back of 10 minutes, a part handed to its
link a second before the step read as going 10 minutes after an answer that came right after the step:
the answer was taken for one to an older SMS, while after a restart (the claim time, moved) it was not.
A hand-off read after the step, before the clock check's look, already reads the stepped clock and stays.
Real SQLite store; the wall clock and boot time injected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.conversations.inflight import may_have_since
from gateway.handoffs import Handoffs
from gateway.store.db import Store
from tests.test_clock_step import Monotonic, accepted, housekeeping
from tests.test_store import Clock

STEP = 600.0


async def test_a_step_back_moves_the_hand_offs_read_before_it(tmp_path: Path) -> None:
    clock, mono = Clock(), Monotonic()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    store.db.serve()
    hk = housekeeping(store, mono)
    handed = Handoffs()
    hk.steps.back, handed.elapsed = handed.stepped_back, mono
    assert await hk.check_clock() == 0.0  # the look before the step
    before, after = await accepted(store), await accepted(store)
    part, later = await store.write(lambda: store.queue.claim_due(2))  # claimed ahead
    clock.t += 1.0
    mono.t += 1.0
    handed.handing(part, clock)()  # written a second before the step
    went = clock.t
    clock.t += 0.5 - STEP
    mono.t += 0.5
    handed.handing(later, clock)()  # after it, on the stepped clock, before the check's look
    went_later = clock.t
    assert await hk.check_clock() == pytest.approx(STEP)
    assert handed.parts[before].first == pytest.approx(went - STEP)
    assert handed.parts[before].last == pytest.approx(went - STEP)
    assert handed.parts[after].first == pytest.approx(went_later)
    # As the stored claim time says after a restart: the phone may have it since the step's undoing.
    message = store.db.conn.execute("SELECT message_id FROM parts WHERE id = ?", (before,)).fetchone()[0]
    since = may_have_since(store.db.conn, message, clock.t, 60.0, handed)
    assert since == pytest.approx(may_have_since(store.db.conn, message, clock.t, 60.0, None), abs=1.5)
    store.close()
