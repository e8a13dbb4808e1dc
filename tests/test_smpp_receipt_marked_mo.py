"""A receipt an SMSC sends with esm_class 0 (MO) but with the receipt's TLVs is read as the receipt.

receipted_message_id (SMPP 3.4 5.3.2.12) and message_state (5.3.2.35) belong to receipts alone. An
SMSC that sent them, with a standard "id:… stat:DELIVRD" text, under esm_class 0 had the text mailed
to the SMS's sender as the phone's answer, counted as an MO (hourly answer limit, conversations),
while the SMS waited `submitted` for a report that had come. A plain MO stays an MO.
A real SmppLink against the SMPP simulator's session over TCP on loopback, the PDU written by hand.
"""

from __future__ import annotations

import structlog

from smsc.base import ReportStatus
from smsc.simulator.smpp_texts import address_fields
from tests.fakes.smsc import HappySMSC
from tests.test_smpp_link import ME, PHONE, running_link

TEXT = b"id:M77 sub:001 dlvrd:001 submit date:2612072200 done date:2612072201 stat:DELIVRD err:000 text:"


async def test_a_receipt_marked_as_an_mo_is_taken_as_the_receipt() -> None:
    with structlog.testing.capture_logs() as logs:
        async with HappySMSC() as smsc, running_link(smsc.port) as (_, ev):
            [session] = smsc.sessions
            receipt = dict(address_fields(PHONE, ME), esm_class=0, data_coding=0, short_message=TEXT,
                           receipted_message_id="M77", message_state=2)  # fmt: skip
            session.send_pdu("deliver_sm", **receipt)
            await smsc.inject_mo(PHONE, ME, "Yes, 10:00 is fine")  # a plain MO after it stays one
            await ev.wait_until(lambda: len(ev.reports) + len(ev.delivered) >= 2)
    assert [m.text for m in ev.delivered] == ["Yes, 10:00 is fine"]
    [report] = ev.reports
    assert (report.message_id, report.status) == ("m77", ReportStatus.DELIVERED)
    assert [e["esm_class"] for e in logs if e["event"] == "smpp.receipt_marked_mo"] == [0]
