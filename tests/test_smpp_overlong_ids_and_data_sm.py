"""What an SMPP SMSC can no longer make the link keep: message ids past SMPP 3.4's 64 characters (a
30 KB receipted_message_id, a receipt text's 100-character `id:`, a 60,000-character submit_sm_resp
id with a newline in it), each kept whole as a receipt's or a part's id, and a data_sm too short for
its own fields, answered OK and handed up as an empty or cut MO. Each test talks to a fake SMSC over
loopback TCP; the hand-made PDUs are written as they are."""

from __future__ import annotations

import struct

import structlog

from smsc.base import Outcome
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from smsc.smpp.codec import DELIVER_SM, MAX_MESSAGE_ID, SUBMIT_SM_RESP, encode_sm
from tests.fakes.smsc import FakeSMSC, HappySMSC
from tests.test_hostile_smsc import events
from tests.test_smpp_link import running_link, sms

DATA_SM = 0x00000103
ESME_RINVCMDLEN, ESME_RINVOPTPARSTREAM = 0x02, 0xC0
TAG_RECEIPTED_MESSAGE_ID, TAG_MESSAGE_STATE, TAG_MESSAGE_PAYLOAD = 0x001E, 0x0427, 0x0424


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value)) + value


def pdu(command_id: int, seq: int, body: bytes = b"") -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, 0, seq) + body


def receipt(seq: int, text: str = "", tlvs: bytes = b"") -> bytes:
    """A deliver_sm flagged as a receipt; hand-made, so that its TLVs may be as long as an SMSC likes."""
    body = encode_sm(DELIVER_SM, seq, esm_class=0x04, source_addr="48601123456", source_addr_ton=1,
                     destination_addr="48100200300", short_message=text.encode())[16:]  # fmt: skip
    return pdu(DELIVER_SM, seq, body + tlvs)


def data_sm(seq: int, tail: bytes) -> bytes:
    """A data_sm from +48601555666 to 48100200300: its mandatory part, then `tail` (the TLVs)."""
    head = b"\0" + b"\x01\x01" + b"48601555666\0" + b"\x01\x01" + b"48100200300\0" + b"\x00\x00\x00"
    return pdu(DATA_SM, seq, head + tail)


# --- ids past SMPP 3.4's 64 characters ---------------------------------------------------------------


async def test_a_receipt_whose_id_is_longer_than_smpp_allows_is_an_unreadable_receipt() -> None:
    # Each was handed up with its id whole: 2,000 such receipts were 60 MB of unmatched rows.
    huge = b"00001" + b"Z" * 30_000 + b"\0"
    state = tlv(TAG_MESSAGE_STATE, b"\x02")
    edge = "A" * MAX_MESSAGE_ID  # the longest id SMPP allows: still a receipt
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
        with structlog.testing.capture_logs() as logs:
            smsc.send_raw(
                receipt(71, tlvs=tlv(TAG_RECEIPTED_MESSAGE_ID, huge) + state)
                + receipt(72, f"id:{'7' * 100} sub:001 dlvrd:001 stat:DELIVRD err:000 text:")
                + receipt(73, f"id:{edge} stat:DELIVRD err:000")
                + receipt(74, tlvs=tlv(TAG_RECEIPTED_MESSAGE_ID, b"7" * 65 + b"\0") + state)
            )
            await smsc.wait_until(lambda: smsc.stats.commands["deliver_sm_resp"] == 4)
            await ev.wait_until(lambda: len(ev.reports) == 1)
            bad_pdus = link.stats().extra["bad_pdus"]
    assert [r.message_id for r in ev.reports] == [edge.lower()]
    assert bad_pdus == "3"
    # Answered OK all the same (4 deliver_sm_resp, no nack), as every unreadable receipt is: sent
    # again, it would be the same bytes.
    assert smsc.stats.nacks == []
    assert events(logs, "smpp.bad_receipt")[0]["seq"] == 71


class LongIdSMSC(FakeSMSC):
    """Answers each submit_sm OK with a message_id of 60,000 characters and a newline: SMPP 3.4
    allows 64, and the simulator's encoder would cut it, so the answer is written by hand."""

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.server.record(sms)
        session.write(pdu(SUBMIT_SM_RESP, seq, b"Q" * 60_000 + b"\n" + b"%X\0" % seq))


async def test_a_submit_answer_whose_id_is_longer_than_smpp_allows_is_accepted_without_an_id() -> None:
    # The 60,004-character id was stored as the part's smsc_id; now the part is accepted with no id
    # to match a receipt to, as one answered with an empty message_id is (it expires unconfirmed).
    async with LongIdSMSC() as smsc, running_link(smsc.port) as (link, _ev):
        with structlog.testing.capture_logs() as logs:
            result = await link.submit(sms())
    assert (result.outcome, result.message_id) == (Outcome.ACCEPTED, None)
    [line] = events(logs, "smpp.overlong_message_id")
    assert line["length"] == 60_000 + 1 + len(f"{line['seq']:X}")


# --- data_sm read as strictly as deliver_sm ------------------------------------------------------


async def test_a_data_sm_too_short_for_its_fields_is_refused_with_a_generic_nack() -> None:
    # Each was answered data_sm_resp OK and handed up: a cut "hello MO text", an empty MO from nobody.
    cut_payload = struct.pack(">HH", TAG_MESSAGE_PAYLOAD, 100) + b"hello MO text"
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
        smsc.send_raw(
            data_sm(9001, cut_payload)
            + pdu(DATA_SM, 9002, b"\x00\x01")
            + pdu(DATA_SM, 9003)
            + data_sm(9004, tlv(TAG_MESSAGE_PAYLOAD, b"a whole MO"))
        )
        await ev.wait_until(lambda: len(ev.delivered) == 1)
        await smsc.wait_until(lambda: len(smsc.stats.nacks) == 3 and smsc.stats.commands["data_sm_resp"] == 1)
        bad_pdus = link.stats().extra["bad_pdus"]
    assert smsc.stats.nacks == [
        (9001, ESME_RINVOPTPARSTREAM),
        (9002, ESME_RINVCMDLEN),
        (9003, ESME_RINVCMDLEN),
    ]
    [mo] = ev.delivered
    assert (mo.source, mo.text) == ("+48601555666", "a whole MO")
    assert bad_pdus == "3"
