"""A submit refused with a status of the SMSC's own (SMPP 3.4 leaves 0x400-0x4FF to vendors).

The link keeps it as `UNKNOWN (0x401)` (`smsc.smpp.pdu.status_text`) and fails the part at once, as any
status it has no name for; `gateway.reasons` took the word for a delivery receipt's stat UNKNOWN: the
bounce and the panel said "lost track of by the operator", and the admin's retry was offered and sent
it into the same refusal. It reads as a refusal now, and a retry is refused as for any other.

Real peer: an SMPP fake on the simulator's server over TCP refusing the submit with 0x401.
"""

from __future__ import annotations

from gateway.bounce import _status
from gateway.reasons import human_reason, refused_for_good
from smsc.base import Outcome
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.fakes.smsc import FakeSMSC
from tests.test_smpp_link import running_link, sms

VENDOR_STATUS = 0x401


class VendorRefusingSMSC(FakeSMSC):
    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.server.record(sms)
        session.answer_submit(seq, None, status=VENDOR_STATUS)


async def test_a_status_of_the_smscs_own_reads_as_a_refusal_not_a_receipt() -> None:
    async with VendorRefusingSMSC() as smsc, running_link(smsc.port) as (link, _ev):
        result = await link.submit(sms())
    assert result.outcome is Outcome.REJECTED and result.error == "UNKNOWN (0x401)"
    said = "the operator refused the message with a code of its own (UNKNOWN, 0x401)"
    assert human_reason(result.error) == said
    assert human_reason(f"generic_nack {result.error}", "pl") == (
        "operator odrzucił wiadomość z własnym kodem błędu (generic_nack UNKNOWN, 0x401)"
    )
    assert refused_for_good(result.error) == f"the SMSC refused it for good: {said}"
    assert _status("failed", result.error) == "5.0.0"
    # A receipt's stat UNKNOWN keeps its words.
    assert human_reason("UNKNOWN err:000") == "lost track of by the operator (UNKNOWN err:000)"
    assert refused_for_good("UNKNOWN err:000") is None
