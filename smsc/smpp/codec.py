"""SMPP 3.4 wire format for the PDUs that every SMS crosses: submit_sm and deliver_sm (they share one
layout), their responses, enquire_link, unbind and generic_nack. smpplib builds each PDU from generic
field descriptions and costs more CPU per SMS than the rest of a link's I/O; here a PDU is a
few slices and struct calls. For valid input the bytes are exactly smpplib's, so binds and the rare
commands stay with smpplib; a data_sm the SMSC delivers is read here too (`decode_data_sm`).
Encoding enforces SMPP's maximum lengths the way smpplib does (over-long C-octet strings are cut);
decoding accepts over-long strings, as smpplib did, because refusing an MO over one octet loses it.
For the same reason a known optional parameter (TLV) of a length the standard does not give it is
skipped (left None), as Kannel does, instead of refusing the receipt or MO whose text carries all
that is needed. Decoding never raises: malformed bytes come back as a `PduError` whose status is
the generic_nack to answer with.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

GENERIC_NACK = 0x80000000
SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004
DELIVER_SM, DELIVER_SM_RESP = 0x00000005, 0x80000005
UNBIND, UNBIND_RESP = 0x00000006, 0x80000006
ENQUIRE_LINK, ENQUIRE_LINK_RESP = 0x00000015, 0x80000015
DATA_SM_RESP = 0x80000103
RESPONSE_BIT = 0x80000000

ESME_RINVMSGLEN, ESME_RINVCMDLEN = 0x01, 0x02
ESME_RINVOPTPARSTREAM = 0xC0
ESME_RUNKNOWNERR = 0xFF
MAX_PDU = 70_000  # message_payload may carry up to 64 KB; anything longer is a broken stream
MAX_SHORT_MESSAGE = 254
# SMPP 3.4 gives message_id (and receipted_message_id, which repeats it) 65 octets with the NUL. A
# longer one is no id: an SMSC's 30 KB receipted_message_id, or its 60,000-character submit_sm_resp
# id, was stored whole as the id of a receipt or a part (2,000 receipts, 60 MB of database and as
# much log). Decoding keeps what came, as it does for every C-octet string; the readers of ids
# (`smsc.receipts`, `smsc.smpp.submits`) take a longer one for none.
MAX_MESSAGE_ID = 64

TAG_RECEIPTED_MESSAGE_ID, TAG_MESSAGE_STATE, TAG_NETWORK_ERROR_CODE = 0x001E, 0x0427, 0x0423
TAG_MESSAGE_PAYLOAD = 0x0424
TAG_SAR_MSG_REF_NUM, TAG_SAR_TOTAL_SEGMENTS, TAG_SAR_SEGMENT_SEQNUM = 0x020C, 0x020E, 0x020F

_HEADER = struct.Struct(">IIII")
_TLV_HEAD = struct.Struct(">HH")
_TLV_U8 = struct.Struct(">HHB")
_TLV_U16 = struct.Struct(">HHH")


@dataclass(frozen=True, slots=True)
class PduError:
    """Why a PDU could not be read; `status` is the command_status for the generic_nack."""

    status: int
    reason: str


@dataclass(slots=True)
class ShortMessage:
    """A submit_sm or deliver_sm body. The names are smpplib's, so that code reading smpplib's PDU
    objects (`smsc.smpp.pdu`'s deliver_sm readers) reads these too. Absent TLVs are None."""

    service_type: str
    source_addr_ton: int
    source_addr_npi: int
    source_addr: str
    dest_addr_ton: int
    dest_addr_npi: int
    destination_addr: str
    esm_class: int
    protocol_id: int
    priority_flag: int
    schedule_delivery_time: str
    validity_period: str
    registered_delivery: int
    replace_if_present_flag: int
    data_coding: int
    sm_default_msg_id: int
    short_message: bytes
    sar_msg_ref_num: int | None = None
    sar_total_segments: int | None = None
    sar_segment_seqnum: int | None = None
    message_payload: bytes | None = None
    network_error_code: bytes | None = None
    message_state: int | None = None
    receipted_message_id: str | None = None


SM_FIELDS = frozenset(f.name for f in fields(ShortMessage))
_HEADER_ONLY = (GENERIC_NACK, UNBIND, UNBIND_RESP, ENQUIRE_LINK, ENQUIRE_LINK_RESP)
_MESSAGE_ID = frozenset({"message_id"})
# What `encode` covers: command id → the field names it takes.
ENCODABLE: dict[int, frozenset[str]] = {
    **dict.fromkeys(_HEADER_ONLY, frozenset()),
    **dict.fromkeys((SUBMIT_SM_RESP, DELIVER_SM_RESP, DATA_SM_RESP), _MESSAGE_ID),
    SUBMIT_SM: SM_FIELDS - {"network_error_code", "message_state", "receipted_message_id"},
    DELIVER_SM: SM_FIELDS,
}


def encode(command_id: int, seq: int, status: int = 0, **values: Any) -> bytes:
    """Any PDU listed in `ENCODABLE`, with fields under smpplib's names; ValueError for the others."""
    allowed = ENCODABLE.get(command_id)
    if allowed is None or not values.keys() <= allowed:
        raise ValueError(f"command 0x{command_id:08X} with {sorted(values)} is not encoded here")
    if command_id in (SUBMIT_SM, DELIVER_SM):
        return encode_sm(command_id, seq, status, **values)
    if allowed:
        return encode_resp(command_id, seq, status, values.get("message_id"))
    return _HEADER.pack(16, command_id, status, seq)


def generic_nack(seq: int, status: int) -> bytes:
    return _HEADER.pack(16, GENERIC_NACK, status, seq)


def encode_resp(command_id: int, seq: int, status: int = 0, message_id: str | None = None) -> bytes:
    """submit_sm_resp, deliver_sm_resp or data_sm_resp: the body is message_id, a lone NUL when empty
    (also for an error status, as smpplib sends it)."""
    body = _cstring(message_id, 65)
    return _HEADER.pack(16 + len(body), command_id, status, seq) + body


def encode_sm(
    command_id: int,
    seq: int,
    status: int = 0,
    *,
    service_type: str = "",
    source_addr_ton: int = 0,
    source_addr_npi: int = 0,
    source_addr: str = "",
    dest_addr_ton: int = 0,
    dest_addr_npi: int = 0,
    destination_addr: str = "",
    esm_class: int = 0,
    protocol_id: int = 0,
    priority_flag: int = 0,
    schedule_delivery_time: str = "",
    validity_period: str = "",
    registered_delivery: int = 0,
    replace_if_present_flag: int = 0,
    data_coding: int = 0,
    sm_default_msg_id: int = 0,
    short_message: bytes = b"",
    sar_msg_ref_num: int | None = None,
    sar_total_segments: int | None = None,
    sar_segment_seqnum: int | None = None,
    message_payload: bytes | None = None,
    network_error_code: bytes | None = None,
    message_state: int | None = None,
    receipted_message_id: str | None = None,
) -> bytes:
    """submit_sm or deliver_sm. ValueError (or UnicodeError, struct.error) for what SMPP cannot
    carry: more than 254 octets of short_message, both short_message and message_payload, a
    character outside Latin-1 in an address, a number that does not fit its field."""
    short_message = short_message or b""
    if len(short_message) > MAX_SHORT_MESSAGE:
        raise ValueError(f"short_message of {len(short_message)} octets exceeds {MAX_SHORT_MESSAGE}")
    if short_message and message_payload:
        raise ValueError("message_payload cannot go with a non-empty short_message")
    if command_id == SUBMIT_SM and (network_error_code or message_state is not None or receipted_message_id):
        raise ValueError("receipt TLVs belong in deliver_sm, not submit_sm")
    parts = [
        b"",  # the header, once the length is known
        _cstring(service_type, 6),
        bytes((source_addr_ton, source_addr_npi)),
        _cstring(source_addr, 21),
        bytes((dest_addr_ton, dest_addr_npi)),
        _cstring(destination_addr, 21),
        bytes((esm_class, protocol_id, priority_flag)),
        _cstring(schedule_delivery_time, 17),
        _cstring(validity_period, 17),
        bytes((registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id)),
        bytes((len(short_message),)),
        short_message,
    ]
    # TLVs in smpplib's order, which is the order of SMPP 3.4's tables.
    if sar_msg_ref_num is not None:
        parts.append(_TLV_U16.pack(TAG_SAR_MSG_REF_NUM, 2, sar_msg_ref_num))
    if sar_total_segments is not None:
        parts.append(_TLV_U8.pack(TAG_SAR_TOTAL_SEGMENTS, 1, sar_total_segments))
    if sar_segment_seqnum is not None:
        parts.append(_TLV_U8.pack(TAG_SAR_SEGMENT_SEQNUM, 1, sar_segment_seqnum))
    if message_payload:
        parts += (_TLV_HEAD.pack(TAG_MESSAGE_PAYLOAD, len(message_payload)), message_payload)
    if network_error_code:
        parts += (_TLV_HEAD.pack(TAG_NETWORK_ERROR_CODE, len(network_error_code)), network_error_code)
    if message_state is not None:
        parts.append(_TLV_U8.pack(TAG_MESSAGE_STATE, 1, message_state))
    if receipted_message_id:
        value = _cstring(receipted_message_id, 65)
        parts += (_TLV_HEAD.pack(TAG_RECEIPTED_MESSAGE_ID, len(value)), value)
    length = 16 + sum(map(len, parts))
    parts[0] = _HEADER.pack(length, command_id, status, seq)
    return b"".join(parts)


def encode_submit(
    seq: int,
    source_addr_ton: int,
    source_addr_npi: int,
    source_addr: str,
    destination_addr: str,
    esm_class: int,
    validity_period: str,
    registered_delivery: int,
    data_coding: int,
    short_message: bytes,
    /,
) -> bytes:
    """The submit_sm of one part, the bytes `encode_sm` writes for the same fields with the others at
    their defaults (the destination international, no TLVs): by position, without the 28 keywords'
    matching and the checks of fields a part never carries, which cost more than the writing
    (`tests/test_submit_pdu.py` holds the two to the same bytes and the same errors). The caller
    checks the short message's length (`smsc.smpp.pdu.submit_values`)."""
    body = b"".join(
        (
            b"\0",  # service_type
            bytes((source_addr_ton, source_addr_npi)),
            _cstring(source_addr, 21),
            b"\1\1",  # dest_addr_ton, dest_addr_npi
            _cstring(destination_addr, 21),
            bytes((esm_class, 0, 0)),  # protocol_id, priority_flag
            b"\0",  # schedule_delivery_time
            _cstring(validity_period, 17),
            bytes((registered_delivery, 0, data_coding, 0, len(short_message))),
            short_message,
        )
    )
    return _HEADER.pack(16 + len(body), SUBMIT_SM, 0, seq) + body


def _cstring(value: str | None, size: int) -> bytes:
    """A C-octet string of at most `size` octets, NUL included; longer text is cut to fit."""
    if not value:
        return b"\0"
    if len(value) >= size:
        value = value[: size - 1]
    return value.encode("latin-1") + b"\0"


# --- decoding -----------------------------------------------------------------------------------


class _Malformed(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def decode_message_id(raw: bytes) -> str:
    """The message_id of a submit_sm_resp (or any response whose body starts with one); "" for an
    empty body, which SMSCs send with an error status. A missing NUL ends the id at the PDU's end."""
    return raw[16:].split(b"\0", 1)[0].decode("latin-1")


def decode_sm(raw: bytes) -> ShortMessage | PduError:
    """A whole submit_sm or deliver_sm PDU (header included). Every mandatory field must be there;
    TLVs this module does not read are skipped, a known one with the wrong length is an error."""
    return _guarded(_decode_sm, raw)


def decode_data_sm(raw: bytes) -> ShortMessage | PduError:
    """A whole data_sm PDU as a `ShortMessage` (its text in message_payload, short_message empty, the
    fields data_sm lacks at their defaults), read as strictly as `decode_sm` reads a deliver_sm.
    smpplib's lenient parse answered data_sm_resp OK to a body of two octets, or a message_payload
    claiming more octets than came, and stored an empty or truncated MO from nobody; the same faults
    in a deliver_sm were refused with a generic_nack, as they now are in a data_sm."""
    return _guarded(_decode_data_sm, raw)


def _guarded(decoder: Callable[[bytes], ShortMessage], raw: bytes) -> ShortMessage | PduError:
    try:
        return decoder(raw)
    except _Malformed as exc:
        return PduError(exc.status, str(exc))
    except IndexError:
        return PduError(ESME_RINVCMDLEN, "PDU ends inside the mandatory fields")
    except Exception as exc:  # a decoder for network bytes must not raise, whatever is missed above
        return PduError(ESME_RUNKNOWNERR, f"undecodable: {exc!r}")


def _addresses(raw: bytes, end: int) -> tuple[str, int, int, str, int, int, str, int]:
    """service_type and both addresses, which start every deliver_sm, submit_sm and data_sm; the
    position after them last. The C-octet strings are read inline, not by a call a string: a receipt
    has five, and the calls cost more than the reading."""
    find = raw.find
    nul = find(b"\0", 16, end)
    if nul < 0:
        raise _Malformed(ESME_RINVCMDLEN, "service_type has no NUL before the end of the PDU")
    service_type = raw[16:nul].decode("latin-1") if nul > 16 else ""
    source_ton, source_npi = raw[nul + 1], raw[nul + 2]
    pos = nul + 3
    nul = find(b"\0", pos, end)
    if nul < 0:
        raise _Malformed(ESME_RINVCMDLEN, "source_addr has no NUL before the end of the PDU")
    source_addr = raw[pos:nul].decode("latin-1")
    dest_ton, dest_npi = raw[nul + 1], raw[nul + 2]
    pos = nul + 3
    nul = find(b"\0", pos, end)
    if nul < 0:
        raise _Malformed(ESME_RINVCMDLEN, "destination_addr has no NUL before the end of the PDU")
    destination_addr = raw[pos:nul].decode("latin-1")
    return service_type, source_ton, source_npi, source_addr, dest_ton, dest_npi, destination_addr, nul + 1


def _decode_data_sm(raw: bytes) -> ShortMessage:
    end = len(raw)
    service_type, source_ton, source_npi, source_addr, dest_ton, dest_npi, destination_addr, pos = _addresses(
        raw, end
    )
    tail = raw[pos : pos + 3]
    if len(tail) < 3:
        raise IndexError
    esm_class, registered, data_coding = tail
    # What data_sm lacks (protocol_id, priority, the times, replace flag, default message, short_message)
    # at the values a deliver_sm without them has.
    return ShortMessage(
        service_type, source_ton, source_npi, source_addr, dest_ton, dest_npi, destination_addr,
        esm_class, 0, 0, "", "", registered, 0, data_coding, 0, b"", *_tlvs(raw, pos + 3, end),
    )  # fmt: skip


def _decode_sm(raw: bytes) -> ShortMessage:
    end = len(raw)
    service_type, source_ton, source_npi, source_addr, dest_ton, dest_npi, destination_addr, pos = _addresses(
        raw, end
    )
    esm_class, protocol_id, priority_flag = raw[pos], raw[pos + 1], raw[pos + 2]
    pos += 3
    nul = raw.find(b"\0", pos, end)
    if nul < 0:
        raise _Malformed(ESME_RINVCMDLEN, "schedule_delivery_time has no NUL before the end of the PDU")
    schedule = raw[pos:nul].decode("latin-1") if nul > pos else ""
    pos = nul + 1
    nul = raw.find(b"\0", pos, end)
    if nul < 0:
        raise _Malformed(ESME_RINVCMDLEN, "validity_period has no NUL before the end of the PDU")
    validity = raw[pos:nul].decode("latin-1") if nul > pos else ""
    pos = nul + 1
    tail = raw[pos : pos + 5]
    if len(tail) < 5:
        raise IndexError
    registered, replace_flag, data_coding, default_id, sm_length = tail
    pos += 5
    sm_end = pos + sm_length
    if sm_end > end:
        raise _Malformed(ESME_RINVMSGLEN, f"sm_length {sm_length} runs past the end of the PDU")
    return ShortMessage(
        service_type, source_ton, source_npi, source_addr, dest_ton, dest_npi, destination_addr,
        esm_class, protocol_id, priority_flag, schedule, validity, registered, replace_flag,
        data_coding, default_id, raw[pos:sm_end], *(_tlvs(raw, sm_end, end) if sm_end < end else _NO_TLVS),
    )  # fmt: skip


# `ShortMessage`'s TLV fields, in its order, as a PDU without optional parameters leaves them.
_NO_TLVS: tuple[None, ...] = (None,) * 7


def _tlvs(
    raw: bytes, pos: int, end: int
) -> tuple[int | None, int | None, int | None, bytes | None, bytes | None, int | None, str | None]:
    """The optional parameters from `pos` to the PDU's end, in `ShortMessage`'s order; see `decode_sm`.
    A tag given twice keeps its last value; one of a length the standard does not give it keeps what
    an earlier one gave (None if none did). The receipts' two tags are looked for first."""
    ref = total = seqnum = payload = network_error = state = receipted = None
    while pos < end:
        if pos + 4 > end:
            raise _Malformed(ESME_RINVOPTPARSTREAM, "TLV header cut short")
        tag, length = _TLV_HEAD.unpack_from(raw, pos)
        pos += 4
        stop = pos + length
        if stop > end:
            raise _Malformed(ESME_RINVOPTPARSTREAM, f"TLV 0x{tag:04X} runs past the end of the PDU")
        if tag == TAG_RECEIPTED_MESSAGE_ID:
            nul = raw.find(b"\0", pos, stop)
            receipted = raw[pos : stop if nul < 0 else nul].decode("latin-1")
        elif tag == TAG_MESSAGE_STATE:
            if length == 1:
                state = raw[pos]
        elif tag == TAG_NETWORK_ERROR_CODE:  # network type + error, read by smsc.receipts
            if length == 3:
                network_error = raw[pos:stop]
        elif tag == TAG_MESSAGE_PAYLOAD:
            payload = raw[pos:stop]
        elif tag == TAG_SAR_MSG_REF_NUM:
            if length == 2:
                ref = raw[pos] << 8 | raw[pos + 1]
        elif tag == TAG_SAR_TOTAL_SEGMENTS:
            if length == 1:
                total = raw[pos]
        elif tag == TAG_SAR_SEGMENT_SEQNUM:
            if length == 1:
                seqnum = raw[pos]
        pos = stop
    return ref, total, seqnum, payload, network_error, state, receipted
