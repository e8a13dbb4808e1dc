"""A link whose SMSC takes each bind (login) and then fails it reads as down, not as up again and again.

Two SMSCs an operator meets: one that drops each session at once (a bind limit reached, a suspended
account), and one that answers the bind and then nothing of ours (hung behind a live TCP socket, or a
firewall that lets the bind through). Either way the link stays down since the first drop, its attempts
counted, with no "up again" in the log until a session holds; then one "up again" says it all. SMPP
against the simulator's SMPP server behind the fake SMSC, CIMD2 against the simulator's CIMD2 server,
both over real TCP on 127.0.0.1, the sessions subclassed to misbehave.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from gateway.config import SimulatorSection
from gateway.linkstatus import links_down
from smsc.base import LinkState
from smsc.cimd2.link import Cimd2Link
from smsc.cimd2.packet import Op, Packet
from smsc.simulator.cimd2_server import Cimd2Server, Cimd2Session
from smsc.simulator.core import SimulatorCore
from smsc.simulator.smpp_server import SmppSession
from smsc.smpp.link import SmppLink
from tests.fakes.cimd2 import RecordingEvents
from tests.fakes.smsc import HappySMSC
from tests.test_cimd2_link import section

ENQUIRE_LINK = 0x00000015
# Sessions that outlive the 'held' mark (0.5 s) but in which nothing of ours is answered: the
# enquire_link (alive) at 0.5 s times out 0.3 s later.
SILENT_LINK = {"enquire_link_seconds": 0.5, "response_timeout_seconds": 0.3}


class _DropsEachBind(SmppSession):
    """Cuts the connection 50 ms after each bind while its server is `failing` (a bind limit reached,
    a suspended account): the link is bound, briefly, and can never send."""

    async def dispatch(self, raw: bytes) -> None:
        await super().dispatch(raw)
        if self.mode is not None and getattr(self.server, "failing", False):
            asyncio.get_running_loop().call_later(0.05, self.writer.transport.abort)


class _DropsEachLogin(Cimd2Session):
    """`_DropsEachBind` for CIMD2: each login taken, the connection cut 50 ms later."""

    def _on_login(self, packet: Packet) -> None:
        super()._on_login(packet)
        if self.logged_in and getattr(self.server, "failing", False):
            asyncio.get_running_loop().call_later(0.05, self.writer.transport.abort)


class _SilentAfterBind(SmppSession):
    """While its server is `failing`, answers the bind and then nothing of ours (hung behind a live TCP
    socket, or a firewall that lets the bind through): each session ends when its first enquire_link
    goes unanswered, just after the 30-s mark (the default enquire_link interval is 30 s too)."""

    async def dispatch(self, raw: bytes) -> None:
        if self.mode is not None and getattr(self.server, "failing", False):
            if struct.unpack_from(">I", raw, 4)[0] == ENQUIRE_LINK:
                return
        await super().dispatch(raw)


class _SilentAfterLogin(Cimd2Session):
    """`_SilentAfterBind` for CIMD2: the login answered, then no alive (40)."""

    def dispatch(self, packet: Packet) -> None:
        if self.logged_in and packet.op == Op.ALIVE and getattr(self.server, "failing", False):
            return
        super().dispatch(packet)


async def _down_until_a_session_holds(
    link: SmppLink | Cimd2Link,
    server: Any,
    events: RecordingEvents,
    logs: list[dict[str, Any]],
    *,
    silent: bool,
) -> None:
    """While the SMSC fails each session, the link stays down since the first drop with its attempts
    counted and no "up again"; once a session holds (`server.failing` cleared), one "up again" says it
    all."""
    prefix = "smpp" if isinstance(link, SmppLink) else "cimd2"
    await events.wait_for(lambda: link.stats().down_since is not None)
    since = link.stats().down_since
    binds = sum(1 for s in events.states if s is LinkState.ACTIVE)
    await events.wait_for(lambda: sum(1 for s in events.states if s is LinkState.ACTIVE) >= binds + 3)
    await events.wait_for(lambda: link.state is not LinkState.ACTIVE)
    # Bound again and again, each time briefly: never up, still down since the first drop.
    assert link.stats().down_since == since
    assert link.stats().down_attempts >= 4, link.stats()
    assert not [e for e in logs if e["event"] == f"{prefix}.up_again"], logs
    if silent:
        # A session that held past the mark but answered nothing proves nothing to the back-off
        # either: the pause doubles each time.
        down = "smpp.link_down" if prefix == "smpp" else "cimd2.reconnect_in"
        waits = [e["retry_in" if prefix == "smpp" else "seconds"] for e in logs if e["event"] == down]
        assert waits == [min(0.05 * 2**i, 0.5) for i in range(len(waits))], waits
    else:
        # Down since then (not since its last flap) is the dashboard's "Needing attention" later.
        view = {"main": {"state": "reconnecting", "down_since": link.stats().down_since, "queued": 0}}
        assert [d.name for d in links_down(view, [], since + 61, str)] == ["main"]
    attempts = link.stats().down_attempts
    server.failing = False
    await events.wait_for(lambda: link.stats().down_since is None)
    [again] = [e for e in logs if e["event"] == f"{prefix}.up_again"]
    assert again["attempts"] >= attempts + 1, (again, attempts)
    assert link.state is LinkState.ACTIVE


async def _smpp_link_against(session_class: type[SmppSession], *, silent: bool = False) -> None:
    """An SMPP link to an SMSC whose sessions are `session_class`'s, failing until told otherwise."""
    from tests.test_smpp_link import running_link

    async with HappySMSC() as smsc:
        smsc.server.session_class = session_class
        smsc.server.failing = True  # type: ignore[attr-defined]
        events = RecordingEvents()
        with capture_logs() as logs:
            async with running_link(
                smsc.port, events=events, active=False, reconnect_min_seconds=0.05,
                reconnect_max_seconds=0.5, **(SILENT_LINK if silent else {}),
            ) as (link, _):  # fmt: skip
                await _down_until_a_session_holds(link, smsc.server, events, logs, silent=silent)


async def _cimd2_link_against(
    tmp_path: Path, session_class: type[Cimd2Session], *, silent: bool = False
) -> None:
    """`_smpp_link_against` for CIMD2, against the simulator's CIMD2 server."""
    core = SimulatorCore(SimulatorSection(system_id="smsgw", password="secret"), tmp_path / "sim.jsonl")
    server = Cimd2Server(core, retry_delay=0.02)
    server.session_class = session_class
    server.failing = True  # type: ignore[attr-defined]
    await server.start()
    options = SILENT_LINK if silent else {}
    cfg = section(server.port, reconnect_min_seconds=0.05, reconnect_max_seconds=0.5, **options)
    link, events = Cimd2Link(cfg, password="secret"), RecordingEvents()
    with capture_logs() as logs:
        await link.start(events)
        try:
            await _down_until_a_session_holds(link, server, events, logs, silent=silent)
        finally:
            await link.stop()
            await server.stop()
            await core.close()


async def test_an_smpp_link_whose_smsc_drops_each_bind_stays_down_until_a_session_holds() -> None:
    await _smpp_link_against(_DropsEachBind)


async def test_a_cimd2_link_whose_smsc_drops_each_login_stays_down_until_a_session_holds(
    tmp_path: Path,
) -> None:
    await _cimd2_link_against(tmp_path, _DropsEachLogin)


async def test_an_smpp_link_whose_smsc_answers_nothing_after_each_bind_stays_down() -> None:
    await _smpp_link_against(_SilentAfterBind, silent=True)


async def test_a_cimd2_link_whose_smsc_answers_nothing_after_each_login_stays_down(tmp_path: Path) -> None:
    await _cimd2_link_against(tmp_path, _SilentAfterLogin, silent=True)
