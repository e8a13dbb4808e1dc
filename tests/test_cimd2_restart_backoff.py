"""A CIMD2 link object started again after `stop()` waits out its back-off between sessions as a link
started once does, against the built-in simulator over TCP. The daemon starts each link once today:
this guards the link's own contract, for any caller that starts one again.

Defect: `stop()` sets the event that cuts a back-off wait short, and a second `start()` left it set:
every wait of the restarted link returned at once, and a link whose SMSC dropped each session logged
in again at once, with no back-off at all.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from smsc.base import LinkState
from smsc.cimd2.link import Cimd2Link
from smsc.simulator.control import send_command
from tests.fakes.events import EventRecorder
from tests.test_link_task_failures import simulator
from tests.test_smsc_link_defects import settings

BACKOFF = 30.0  # the shortest back-off: far longer than the test looks
LOOK = 1.0  # how long the test watches for a login that should not come yet


@pytest.mark.parametrize("restarted", [False, True], ids=["first start", "started again after stop"])
async def test_a_dropped_session_waits_its_back_off_before_the_next_login(
    tmp_path: Path, restarted: bool
) -> None:
    with capture_logs() as logs:
        async with simulator(tmp_path) as sim:
            assert sim.cimd2_port is not None and sim.control_port is not None
            cfg = settings("cimd2", sim.cimd2_port, reconnect_min_seconds=BACKOFF, reconnect_max_seconds=60)
            link, ev = Cimd2Link(cfg, password="secret"), EventRecorder()
            await link.start(ev)
            try:
                await ev.wait_until(lambda: link.state is LinkState.ACTIVE)
                if restarted:
                    await link.stop()
                    await link.start(ev)
                    await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
                logins = ev.states.count(LinkState.ACTIVE)
                assert (await send_command("127.0.0.1", sim.control_port, {"op": "drop"}))["dropped"] == 1
                await ev.wait_for(lambda: any(e["event"] == "cimd2.reconnect_in" for e in logs))
                await asyncio.sleep(LOOK)
                # Still waiting its back-off: before the fix the restarted link logged in again at once.
                assert ev.states.count(LinkState.ACTIVE) == logins, ev.states
                assert link.state is LinkState.RECONNECTING
            finally:
                await link.stop()
    waits = [e["seconds"] for e in logs if e["event"] == "cimd2.reconnect_in"]
    assert waits == [BACKOFF], waits
