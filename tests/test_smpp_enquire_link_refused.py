"""An SMSC that answers every enquire_link with generic_nack ESME_RINVCMDID (it does not take the
command): the answer keeps the session, and the log says so once a connection, a WARNING for the link's
first and INFO after it, where it wrote a WARNING at every keep-alive for ever. The fake SMSC over
loopback TCP, its enquire_link answered so."""

from __future__ import annotations

import struct

import structlog

from smsc.base import LinkState, Outcome
from tests.fakes.smsc import HappySMSC, _FakeSession
from tests.test_hostile_smsc import events
from tests.test_smpp_link import running_link, sms

ENQUIRE_LINK, ESME_RINVCMDID, ESME_RSYSERR = 0x00000015, 0x03, 0x08


class Refusing(_FakeSession):
    refused = 0
    status = ESME_RINVCMDID

    async def dispatch(self, raw: bytes) -> None:
        command_id, _status, seq = struct.unpack_from(">III", raw, 4)
        if command_id != ENQUIRE_LINK:
            await super().dispatch(raw)
            return
        Refusing.refused += 1
        self.nack(seq, self.status)


async def test_enquire_link_refused_by_generic_nack_is_said_once_a_connection() -> None:
    Refusing.refused = 0
    async with HappySMSC() as smsc:
        smsc.server.session_class = Refusing
        with structlog.testing.capture_logs() as logs:
            async with running_link(smsc.port, enquire_link_seconds=0.05) as (link, ev):
                await ev.wait_for(lambda: Refusing.refused >= 5)
                assert ev.states.count(LinkState.ACTIVE) == 1, ev.states  # the nack kept the session
                smsc.drop_all()
                await ev.wait_for(lambda: ev.states.count(LinkState.ACTIVE) == 2)
                refused = Refusing.refused
                await ev.wait_for(lambda: Refusing.refused >= refused + 5)
                assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert ev.states.count(LinkState.ACTIVE) == 2, ev.states
    said = events(logs, "smpp.enquire_link_refused")
    assert [e["log_level"] for e in said] == ["warning", "info"], said
    assert said[0]["status"] == "ESME_RINVCMDID (0x03)"
    assert not events(logs, "smpp.generic_nack")


class Failing(Refusing):
    status = ESME_RSYSERR


async def test_enquire_link_nacked_for_another_reason_is_no_refusal() -> None:
    # ESME_RSYSERR to a keep-alive is trouble at the SMSC, not the command refused: said as any
    # generic_nack is (throttled), not once a connection as a refusal and then silenced.
    Refusing.refused = 0
    async with HappySMSC() as smsc:
        smsc.server.session_class = Failing
        with structlog.testing.capture_logs() as logs:
            async with running_link(smsc.port, enquire_link_seconds=0.05) as (link, ev):
                await ev.wait_for(lambda: Refusing.refused >= 3)
                assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert ev.states.count(LinkState.ACTIVE) == 1, ev.states  # an answer all the same
    assert not events(logs, "smpp.enquire_link_refused")
    nacks = events(logs, "smpp.generic_nack")
    assert nacks and all(e["status"] == "ESME_RSYSERR (0x08)" for e in nacks), nacks
