"""A bind_transceiver_resp saying 0 that is not quite SMPP: a body smpplib's strict parser refuses (a
system_id padded with an extra NUL, an sc_interface_version TLV of the wrong length) or another
sequence number than our bind's. The session is bound all the same; it stayed down for ever, each try
ending "no bind_transceiver_resp". The SMSC is the fake one over loopback TCP, its bind answer bent."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import structlog

from smsc.base import LinkState, Outcome
from tests.fakes.smsc import HappySMSC, _FakeSession
from tests.test_hostile_smsc import events
from tests.test_smpp_link import running_link, sms

BIND_TRANSCEIVER_RESP = 0x80000009
SC_INTERFACE_VERSION = 0x0210


def bent(body: bytes, seq: int | None = None) -> type[_FakeSession]:
    """A session whose successful bind answer carries `body`, and `seq` instead of the bind's if given."""

    class Bent(_FakeSession):
        def send_pdu(self, name: str, seq_: int | None = None, status: int = 0, **fields: Any) -> int:
            if name != "bind_transceiver_resp" or status:
                return super().send_pdu(name, seq_, status, **fields)
            assert seq_ is not None
            number = seq_ if seq is None else seq
            self.write(struct.pack(">IIII", 16 + len(body), BIND_TRANSCEIVER_RESP, 0, number) + body)
            return number

    return Bent


@pytest.mark.parametrize(
    "body",
    [
        b"HSMSC\0\0",  # one NUL of padding after the system_id
        b"HSMSC\0" + struct.pack(">HH", SC_INTERFACE_VERSION, 0),  # the version TLV empty
        b"HSMSC\0" + struct.pack(">HHH", SC_INTERFACE_VERSION, 2, 0x3400),  # two octets of it
    ],
    ids=["padded-system-id", "version-tlv-len-0", "version-tlv-len-2"],
)
async def test_a_bind_resp_whose_body_smpplib_refuses_still_binds(body: bytes) -> None:
    async with HappySMSC() as smsc:
        smsc.server.session_class = bent(body)
        with structlog.testing.capture_logs() as logs:
            async with running_link(smsc.port, response_timeout_seconds=2) as (link, ev):
                assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert ev.states.count(LinkState.ACTIVE) == 1 and len(smsc.stats.binds) == 1, ev.states
        assert not events(logs, "smpp.bad_pdu")


async def test_a_bind_resp_with_another_sequence_number_answers_the_bind_and_is_logged() -> None:
    async with HappySMSC() as smsc:
        smsc.server.session_class = bent(b"HSMSC\0", seq=0)
        with structlog.testing.capture_logs() as logs:
            async with running_link(smsc.port, response_timeout_seconds=2) as (link, ev):
                assert link._conn is not None
                bind_seq = link._conn.bind_seq
                assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert ev.states.count(LinkState.ACTIVE) == 1 and len(smsc.stats.binds) == 1, ev.states
        [line] = events(logs, "smpp.bind_resp_sequence")
        assert line["log_level"] == "warning" and (line["seq"], line["expected"]) == (0, bind_seq)
