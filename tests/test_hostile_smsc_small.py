"""Regressions for the smaller findings of a hostile-SMSC review: a stray response of a command id SMPP
does not define, the words on parts refused after the SMSC's unbind, and what the logs of an unreadable
receipt, a UDH that does not fit and CIMD2 garbage may say (lengths and names, no text, no number).
The SMPP tests talk to the project's fake SMSCs over loopback TCP; the CIMD2 ones feed the real parser.
"""

from __future__ import annotations

import struct

import pytest
import structlog

from smsc.base import LinkState, Outcome
from tests.fakes.smsc import HappySMSC, HeldSMSC
from tests.test_hostile_smsc import events, settle
from tests.test_smpp_link import running_link, sms

ESME_RINVBNDSTS = 0x04
UNBIND = 0x00000006


# --- a stray response with the "incorrect bind status" --------------------------------------------


@pytest.mark.parametrize(
    "command_id",
    [
        0x80000999,  # no SMPP command: the log said `smpp.bind_lost ... "command": null`
        0x80000005,  # deliver_sm_resp: we send no deliver_sm, so no answer of ours
        0x80000103,  # data_sm_resp: neither
    ],
)
async def test_a_stray_response_with_esme_rinvbndsts_leaves_the_session_bound(command_id: int) -> None:
    # Any response with status 0x04 dropped the bind: a peer could end every session at will.
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
        with structlog.testing.capture_logs() as logs:
            smsc.send_raw(struct.pack(">IIII", 16, command_id, ESME_RINVBNDSTS, 4242))
            assert (await link.submit(sms())).outcome is Outcome.ACCEPTED  # read after the stray one
        assert ev.states.count(LinkState.ACTIVE) == 1 and len(smsc.stats.binds) == 1, ev.states
        assert link._conn is not None and link._conn.bound
        assert not events(logs, "smpp.bind_lost")
        if command_id == 0x80000999:
            [line] = events(logs, "smpp.unknown_command")
            assert line["command_id"] == "0x80000999" and line["seq"] == 4242
        else:
            [line] = events(logs, "smpp.unexpected_response")
            assert line["seq"] == 4242


async def test_enquire_link_resp_with_esme_rinvbndsts_still_rebinds() -> None:
    # The answer to one of our own requests saying so is a bind lost, as before.
    async with HappySMSC() as smsc, running_link(smsc.port) as (_link, ev):
        smsc.send_raw(struct.pack(">IIII", 16, 0x80000015, ESME_RINVBNDSTS, 4243))
        await ev.wait_for(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        assert len(smsc.stats.binds) == 2


# --- parts refused after the SMSC's unbind --------------------------------------------------------


async def test_a_part_refused_after_the_smscs_unbind_says_so() -> None:
    # The SMSC unbinds with a submit unanswered: its answer is awaited, and a part handed over
    # meanwhile is refused unsent, with the error "link active" in the log, the state it was in.
    async with HeldSMSC() as smsc, running_link(smsc.port) as (link, _ev):
        pending = link.send(sms())
        await smsc.wait_for(1)
        smsc.send_raw(struct.pack(">IIII", 16, UNBIND, 0, 4244))
        await settle(lambda: link._conn is not None and link._conn.peer_unbound_until is not None, 3)
        refused = await link.submit(sms())
        assert refused.outcome is Outcome.TEMPORARY and refused.unsent, refused
        assert refused.error == "link closing: the SMSC asked to unbind", refused
        smsc.answer()
        assert (await pending).outcome is Outcome.ACCEPTED
