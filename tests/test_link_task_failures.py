"""A link's task survives a fault in the rest of its reconnect turn: SMPP and CIMD2 links against the
built-in simulator over TCP, its control port dropping the session.

Defect: only the session was inside the task's guard. A fault after it (the back-off, the outage's
words, a log call) ended the task with no word: the link said "connecting" for ever, sent and took
nothing, while the daemon answered mail with 250; its `stop` raised the fault instead of saying
"stopped", and the daemon's stop of the link suppressed that unsaid. The fault is injected into the
driver's own helpers: no peer makes our code fail on demand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import smsc.cimd2.link as cimd2_link
import smsc.smpp.link as smpp_link
from gateway.config import SimulatorSection
from gateway.daemon import _stop_link
from gateway.stoptiming import StopBudget
from smsc.base import LinkState, Outcome
from smsc.simulator import Simulator
from smsc.simulator.control import send_command
from tests.fakes.events import EventRecorder
from tests.test_smsc_link_defects import settings, sms

DRIVERS = {"smpp": (smpp_link, smpp_link.SmppLink), "cimd2": (cimd2_link, cimd2_link.Cimd2Link)}


@asynccontextmanager
async def simulator(tmp_path: Path) -> AsyncIterator[Simulator]:
    cfg = SimulatorSection(smpp_port=0, cimd2_port=0, control_port=0, dlr_delay_seconds=0.01)
    sim = Simulator(cfg, tmp_path / "simulator.jsonl")
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def link_to(sim: Simulator, protocol: str) -> Any:
    port = sim.smpp_port if protocol == "smpp" else sim.cimd2_port
    assert port is not None
    return DRIVERS[protocol][1](settings(protocol, port, reconnect_max_seconds=0.1), password="secret")


def fails_once(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[object]:
    """`module.name` (a helper the driver calls after each session) raising at its first call only."""
    real, calls = getattr(module, name), []

    def once(*args: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise ArithmeticError(f"{name} broke")
        return real(*args)

    monkeypatch.setattr(module, name, once)
    return calls


@pytest.mark.parametrize("fault", ["backoff", "outage_words"])
@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_a_turn_that_fails_after_its_session_is_logged_and_the_link_binds_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str, fault: str
) -> None:
    calls = fails_once(monkeypatch, DRIVERS[protocol][0], fault)
    with capture_logs() as logs:
        async with simulator(tmp_path) as sim:
            link, ev = link_to(sim, protocol), EventRecorder()
            await link.start(ev)
            try:
                await ev.wait_until(lambda: link.state is LinkState.ACTIVE)
                assert (await send_command("127.0.0.1", sim.control_port, {"op": "drop"}))["dropped"] == 1
                await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
                assert (await link.submit(sms("after the fault"))).outcome is Outcome.ACCEPTED
                # And its outage ends as any other's, in words (`outage_words` again).
                await ev.wait_for(lambda: any(e["event"] == f"{protocol}.up_again" for e in logs))
            finally:
                await link.stop()
    [failed] = [e for e in logs if e["event"] == f"{protocol}.link_task_failed"]
    assert failed["link"] == "op" and f"{fault} broke" in failed["error"], failed
    assert isinstance(failed["exc_info"], ArithmeticError) and failed["retry_in"] == 0.1
    # Not "active" while it waits to connect again after the fault: the dispatcher hands it nothing.
    first, second = (i for i, state in enumerate(ev.states) if state is LinkState.ACTIVE)
    assert LinkState.RECONNECTING in ev.states[first:second], ev.states
    assert link.state is LinkState.STOPPED and calls
    assert link.stats().last_error.startswith("link task failed: ArithmeticError"), link.stats().last_error


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_a_link_task_that_ended_anyway_is_logged_at_stop_and_the_link_says_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    # The turn fails and so does the link's own answer to it: nothing is left to keep the task going.
    module, cls = DRIVERS[protocol]
    fails_once(monkeypatch, module, "backoff")

    def broken(self: Any, error: str) -> None:
        raise LookupError("answer to the fault broke")

    monkeypatch.setattr(cls, "_turn_failed", broken)
    with capture_logs() as logs:
        async with simulator(tmp_path) as sim:
            link, ev = link_to(sim, protocol), EventRecorder()
            await link.start(ev)
            await ev.wait_until(lambda: link.state is LinkState.ACTIVE)
            await send_command("127.0.0.1", sim.control_port, {"op": "drop"})
            await ev.wait_for(lambda: link._task.done())
            await _stop_link("op", link, StopBudget())
    ended = [e for e in logs if e["event"] == f"{protocol}.link_task_failed"]
    assert [type(e["exc_info"]) for e in ended] == [ArithmeticError, LookupError], ended
    assert link.state is LinkState.STOPPED and ev.states[-1] is LinkState.STOPPED
    assert not [e for e in logs if e["event"].startswith("daemon.link_stop")]


class _BrokenStop:
    """A link whose unbind fails: no real link is made to fail so on demand."""

    async def stop(self, *, drain: bool = True) -> None:
        raise RuntimeError("unbind broke")


async def test_the_daemon_logs_a_link_stop_that_fails_and_goes_on() -> None:
    with capture_logs() as logs:
        await _stop_link("op", _BrokenStop(), StopBudget())  # type: ignore[arg-type]
    [failed] = [e for e in logs if e["event"] == "daemon.link_stop_failed"]
    assert failed["link"] == "op" and failed["log_level"] == "error" and failed["exc_info"] is True
