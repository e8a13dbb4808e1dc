"""A bind refused with ESME_RBINDFAIL (0x0D), which says only that the bind failed.

It was taken for wrong credentials: an ERROR line "the SMSC refused the login: check [[smsc]] … system_id
and password" and the longest wait before each new bind (`reconnect_max_seconds`), where operators send
it for a limit on sessions, an address not allowed or an old session of ours not yet dropped, which
clear on their own. It is now retried on the ordinary back-off, and its words name every such cause.
ESME_RINVPASWD and ESME_RINVSYSID stay configuration errors.

Real peer: an SMPP fake on the simulator's server over TCP, its bind answers rewritten.
"""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from smsc.base import LinkState
from smsc.simulator.smpp_server import SmppSession
from tests.fakes.smsc import FakeSMSC, _FakeSession
from tests.test_smpp_link import running_link

ESME_RBINDFAIL = 0x0D


class _BindFailSession(_FakeSession):
    """Answers every bind with ESME_RBINDFAIL."""

    def _on_bind(self, name: str, pdu: Any, seq: int) -> None:
        self.server.stats.binds.append(("trx", "smsgw", ESME_RBINDFAIL))
        self.server.changed()
        SmppSession.send_pdu(self, name + "_resp", seq, ESME_RBINDFAIL)


class BindFailSMSC(FakeSMSC):
    def __init__(self) -> None:
        super().__init__()
        self.server.session_class = _BindFailSession


async def test_bind_fail_is_retried_on_the_ordinary_backoff_and_not_blamed_on_the_login() -> None:
    timers = {"reconnect_min_seconds": 0.05, "reconnect_max_seconds": 2}
    with capture_logs() as logs:
        async with (
            BindFailSMSC() as smsc,
            running_link(smsc.port, active=False, **timers) as (_link, ev),
        ):
            await smsc.wait_until(lambda: len(smsc.stats.binds) >= 2, timeout=10)
            assert LinkState.ACTIVE not in ev.states
    assert not [e for e in logs if e["event"] == "smpp.bind_refused"]  # the ERROR of a login refused
    down = [e for e in logs if e["event"] == "smpp.link_down"]
    assert down and down[0]["log_level"] == "warning", logs
    assert down[0]["retry_in"] < timers["reconnect_max_seconds"]  # the back-off's first step
    assert down[0]["reason"] == (
        "bind refused: ESME_RBINDFAIL (0x0D): the SMSC refused the bind without saying why (a limit on"
        " sessions, an address it does not allow, a session of ours it still holds, or the login:"
        ' [[smsc]] "op" system_id and password)'
    )
