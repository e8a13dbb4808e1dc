"""Smaller regressions against a hostile SMSC: a stray response of a command id SMPP
does not define, the words on parts refused after the SMSC's unbind, and what the logs of an unreadable
receipt, a UDH that does not fit and CIMD2 garbage may say (lengths and names, no text, no number).
The SMPP tests talk to the project's fake SMSCs over loopback TCP; the CIMD2 ones feed the real parser.
"""

from __future__ import annotations

import struct

import pytest
import structlog

from smsc.base import LinkState, Outcome
from smsc.cimd2.packet import Cimd2Parser, Op, P, Packet, encode
from smsc.smpp.codec import DELIVER_SM, encode_sm
from tests.fakes.smsc import HappySMSC, HeldSMSC
from tests.test_hostile_smsc import events, settle
from tests.test_smpp_link import ME, PHONE, running_link, sms

ESME_RINVBNDSTS = 0x04
UNBIND = 0x00000006
SECRET_TEXT = "Meet me at 7, PIN 4711"
NUMBER = "48601123456"


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


# --- what the logs of unreadable PDUs may say -----------------------------------------------------


async def test_an_unreadable_receipt_is_logged_without_its_text() -> None:
    # smpp.bad_receipt logged 200 bytes of the receipt in hex: the `text:` field quotes the SMS.
    receipt = f"sub:001 dlvrd:001 stat:DELIVRD err:000 text:{SECRET_TEXT}".encode()
    async with HappySMSC() as smsc, running_link(smsc.port):
        with structlog.testing.capture_logs() as logs:
            smsc.send_raw(encode_sm(DELIVER_SM, 91, esm_class=4, source_addr=NUMBER, short_message=receipt))
            await settle(lambda: bool(events(logs, "smpp.bad_receipt")), 3)
    [line] = events(logs, "smpp.bad_receipt")
    assert line["length"] == len(receipt) and line["seq"] == 91
    assert line["fields"] == ["sub", "dlvrd", "stat", "err", "text"]  # no id: why it is unusable
    assert_private(logs)


async def test_an_mo_whose_udh_does_not_fit_is_logged_without_its_text() -> None:
    # smpp.bad_udh logged 200 bytes of the MO in hex, its text with them.
    data = b"\x99" + SECRET_TEXT.encode()  # UDHI set, a UDH of 0x99 octets: read as text
    async with HappySMSC() as smsc, running_link(smsc.port) as (_link, ev):
        with structlog.testing.capture_logs() as logs:
            mo = encode_sm(DELIVER_SM, 92, esm_class=0x40, source_addr=NUMBER, source_addr_ton=1,
                           destination_addr=ME[1:], short_message=data)  # fmt: skip
            smsc.send_raw(mo)
            await ev.wait_until(lambda: len(ev.delivered) == 1)
    [line] = events(logs, "smpp.bad_udh")
    assert (line["length"], line["udh"]) == (len(data), data[:3].hex())  # "99" the UDH's length
    assert_private(logs)


def test_cimd2_garbage_is_logged_without_text_or_number() -> None:
    # cimd2.garbage logged the first 40 bytes of the abandoned frame: its numbers and text.
    frame = encode(Packet(Op.DELIVER, 3, [(P.DESTINATION, NUMBER), (P.ORIGINATOR, NUMBER),
                                          (P.USER_DATA, SECRET_TEXT)]))  # fmt: skip
    parser = Cimd2Parser()
    with structlog.testing.capture_logs() as logs:
        packets = parser.feed(frame[:-5] + frame)  # a second STX before the first frame's ETX
    assert [p.op for p in packets] == [Op.DELIVER]
    [line] = events(logs, "cimd2.garbage")
    assert line["reason"] == "STX before ETX" and line["length"] == len(frame) - 5
    assert line["outline"] == "20:003 021 023 033..."
    assert_private(logs)


@pytest.mark.parametrize(
    ("frame", "outline"),
    [
        (f"\x02Hi {NUMBER}, {SECRET_TEXT}\t33\x03", "header 'aa 99999...'"),
        (f"\x023:001\t021:{NUMBER}\t033:{SECRET_TEXT}\t\x03", "header '9:999' 021 033"),
    ],
)
def test_cimd2_bad_frame_is_logged_without_text_or_number(frame: str, outline: str) -> None:
    # cimd2.bad_frame logged the frame's first 40 bytes: a number, or the start of an SMS.
    parser = Cimd2Parser()
    with structlog.testing.capture_logs() as logs:
        assert parser.feed(frame.encode("latin-1")) == []
    [line] = events(logs, "cimd2.bad_frame")
    assert line["length"] == len(frame) - 1 and line["outline"] == outline
    assert_private(logs)


def assert_private(logs: list[dict[str, object]]) -> None:
    """Neither the SMS's text (nor a word of it) nor the phone number appears in any line."""
    said = repr(logs)
    for secret in (SECRET_TEXT, "Meet", "4711", NUMBER, NUMBER[-6:], SECRET_TEXT.encode().hex()[:8],
                   NUMBER.encode().hex()[:8], PHONE):  # fmt: skip
        assert secret not in said, (secret, logs)
