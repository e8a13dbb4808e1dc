"""A link session's own tasks that fail are logged and end the session, which the link makes again; a
deliver_sm's answer that fails is logged: SMPP against the fake SMSC and CIMD2 against the simulator's
server, over TCP on loopback.

Defects: the keepalive (SMPP and CIMD2) and CIMD2's taker of deliveries were read only at the session's
end, with `gather(return_exceptions=True)`, and their errors dropped: the session went on without a
keepalive, or took no MO any more (each delivered again and again, never answered), with no word. A
failure in writing a deliver_sm's answer, or in following its acknowledgement, was said only by
asyncio's "Task exception was never retrieved" whenever the task was collected. The fault itself is
injected into the task (no peer makes our code fail on demand).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog

from smsc.base import InboundSms, LinkState, MoAcks, Outcome
from smsc.cimd2.inbound import InboundRequests
from smsc.cimd2.requests import Requests
from smsc.smpp.connection import SmppConnection
from tests.fakes.smsc import HappySMSC
from tests.test_cimd2_link import running
from tests.test_smpp_link import ME, PHONE, running_link, sms


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == name]


def _fails_first(calls: list[object], real: Any, why: str) -> Any:
    """`real` (a session task's coroutine function) that fails in the first session only."""

    async def task(self: Any, *args: Any) -> None:
        calls.append(self)
        if len(calls) == 1:
            raise RuntimeError(why)
        await real(self, *args)

    return task


async def test_an_smpp_keepalive_that_fails_is_logged_and_the_session_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[object] = []
    broken = _fails_first(calls, SmppConnection.keepalive_loop, "keepalive broke")
    monkeypatch.setattr(SmppConnection, "keepalive_loop", broken)
    with structlog.testing.capture_logs() as logs:
        async with HappySMSC() as smsc, running_link(smsc.port, enquire_link_seconds=0.1) as (link, ev):
            await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
            assert (await link.submit(sms("after the new bind"))).outcome is Outcome.ACCEPTED
    [failed] = _events(logs, "smpp.session_task_failed")
    assert (failed["link"], failed["task"]) == ("op", "keepalive") and "keepalive broke" in failed["error"]
    assert isinstance(failed["exc_info"], RuntimeError)
    assert len(calls) == 2 and len(smsc.stats.binds) == 2


async def test_a_cimd2_taker_of_deliveries_that_fails_is_logged_and_the_mo_taken_by_the_next_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(
        InboundRequests, "serve", _fails_first(calls, InboundRequests.serve, "deliveries broke")
    )
    with structlog.testing.capture_logs() as logs:
        async with running(tmp_path) as r:
            await r.events.wait_for(lambda: r.events.states.count(LinkState.ACTIVE) == 2)
            await r.core.inject_mo(PHONE, "7155", "STOP")
            await r.events.wait_for(lambda: len(r.events.delivered) == 1)
    [failed] = _events(logs, "cimd2.session_task_failed")
    assert (failed["link"], failed["task"]) == ("c2", "deliveries") and "deliveries broke" in failed["error"]
    assert r.events.delivered[0].text == "STOP" and len(calls) == 2


async def test_a_cimd2_keepalive_that_fails_is_logged_and_the_session_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(Requests, "keepalive", _fails_first(calls, Requests.keepalive, "alive broke"))
    with structlog.testing.capture_logs() as logs:
        async with running(tmp_path) as r:
            await r.events.wait_for(lambda: r.events.states.count(LinkState.ACTIVE) == 2)
    [failed] = _events(logs, "cimd2.session_task_failed")
    assert (failed["link"], failed["task"]) == ("c2", "keepalive") and "alive broke" in failed["error"]


async def test_a_failed_answer_to_a_deliver_sm_is_logged_and_the_link_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = MoAcks.written
    calls: list[str] = []

    def fails_first(self: MoAcks, sms: InboundSms, *, arrived: float, ok: bool) -> None:
        calls.append(sms.text)
        if len(calls) == 1:
            raise RuntimeError("acks broke")
        real(self, sms, arrived=arrived, ok=ok)

    monkeypatch.setattr(MoAcks, "written", fails_first)
    with structlog.testing.capture_logs() as logs:
        async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
            await smsc.inject_mo(PHONE, ME, "first")
            await ev.wait_until(lambda: bool(_events(logs, "smpp.delivery_answer_failed")))
            await smsc.inject_mo(PHONE, ME, "second")
            await ev.wait_until(lambda: ("second", True) in ev.acked)
            assert link.state is LinkState.ACTIVE
    [failed] = _events(logs, "smpp.delivery_answer_failed")
    assert (failed["link"], failed["pdu"], failed["status"]) == ("op", "deliver_sm", 0)
    assert [s.text for s in ev.delivered] == ["first", "second"] and calls == ["first", "second"]
