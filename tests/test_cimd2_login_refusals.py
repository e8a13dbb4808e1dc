"""The SMSC's answer to our login, against a scripted SMSC over TCP: a 51 whose 900 is no number is a
refusal, not a login that worked (the link never goes active, nothing is submitted)."""

from __future__ import annotations

import structlog

from smsc.base import LinkState
from smsc.cimd2.link import Cimd2Link
from smsc.cimd2.packet import Op, P, Packet
from tests.fakes.cimd2 import RecordingEvents, ScriptedSmsc
from tests.test_cimd2_link import section


async def test_a_login_answer_whose_900_is_no_number_is_a_refusal() -> None:
    # 51 with 900:E100 901:invalid login was read as no code: the link went active and its submits
    # went to an SMSC that had not let it in. Refused now, with the SMSC's words; tried again later.
    async with ScriptedSmsc() as peer:
        link, events = Cimd2Link(section(peer.port), password="pw"), RecordingEvents()
        with structlog.testing.capture_logs() as logs:
            await link.start(events)
            try:
                conn = await peer.accept()
                login = await conn.next()
                assert login.op == Op.LOGIN
                conn.send(Packet.make(Op.LOGIN_RESP, login.number, (P.ERROR_CODE, "E100"),
                                      (P.ERROR_TEXT, "invalid login")))  # fmt: skip
                await events.wait_for(lambda: any(e["event"] == "cimd2.login_refused" for e in logs))
                again = await peer.accept()  # not fatal: a new login after the back-off
                assert (await again.next()).op == Op.LOGIN
                last_error = link.stats().last_error
            finally:
                await link.stop(drain=False)
    assert LinkState.ACTIVE not in events.states
    (refused,) = [e for e in logs if e["event"] == "cimd2.login_refused"]
    assert refused["fatal"] is False and "E100" in refused["error"] and "invalid login" in refused["error"]
    assert last_error == "login refused: unreadable error code 900 'E100': invalid login"
