"""SMPP 3.4 without a socket: the command_status tables and their `Outcome`s, how statuses read in logs,
message id normalisation, our source address's TON/NPI, sequence numbers, the submit_sm fields for one
part and the reading of a deliver_sm or data_sm into `InboundSms` or `DeliveryReport`. Nothing here does
I/O, logs or touches bytes (that is `smsc.smpp.codec`), so that `smsc.smpp.link` keeps only the
connection's state and the mapping rules can be checked without a peer.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from smpplib import command_codes
from smpplib import consts as smpp_consts

from smsc.base import Concat, DeliveryReport, InboundSms, OutboundSms, Outcome, unpadded
from smsc.decoding import decode_user_data
from smsc.gsmalphabet import gsm_decode
from smsc.receipts import parse_receipt
from smsc.settings import SHORT_CODE_DIGITS, SHORT_CODE_TONS, LinkSettings

# --- command_status → Outcome (SMPP 3.4 section 5.1.3; Kannel's temporary/throttling choices) -------
# smpplib's constants carry the SMPP 3.4 names: SMPP_ESME_RINVDSTADR = 0x0B and so on.
STATUS_NAMES: dict[int, str] = {
    v: k.removeprefix("SMPP_") for k, v in vars(smpp_consts).items() if k.startswith("SMPP_ESME_")
}
STATUS_OUTCOMES: dict[int, Outcome] = {
    0x00: Outcome.ACCEPTED,
    0x58: Outcome.THROTTLED,  # ESME_RTHROTTLED
    # ESME_RMSGQFUL: the SMSC's queue, not our message (vumi PR #636); or one phone's, when the SMSC
    # says it again of a part and took others meanwhile; either, when it answered nothing else
    # meanwhile (`smsc.smpp.submits.QueueFull`).
    0x14: Outcome.THROTTLED,
    0x08: Outcome.TEMPORARY,  # ESME_RSYSERR
    # ESME_RINVBNDSTS: the SMSC lost our bind, not the part; the connection closes and rebinds
    # (`smsc.smpp.connection`) and the part goes out again on the new session.
    0x04: Outcome.TEMPORARY,
    0x64: Outcome.TEMPORARY,  # ESME_RX_T_APPN
    0x01: Outcome.MALFORMED, 0x02: Outcome.MALFORMED, 0x03: Outcome.MALFORMED,
    0xC0: Outcome.MALFORMED, 0xC1: Outcome.MALFORMED, 0xC2: Outcome.MALFORMED,
    0xC3: Outcome.MALFORMED, 0xC4: Outcome.MALFORMED,
}  # fmt: skip  # every other status: Outcome.REJECTED
BIND_CONFIG_ERRORS = frozenset({0x0E, 0x0F})  # password or system_id refused: retrying soon cannot help
# "Bind failed", no more: operators send it for a limit on sessions, an address not allowed, a session
# of ours not yet dropped, as well as for a login. Retried on the ordinary back-off, like ESME_RALYBND.
ESME_RBINDFAIL = 0x0D

ESME_RINVCMDLEN, ESME_RINVCMDID, ESME_RINVBNDSTS = 0x02, 0x03, 0x04
ESME_RX_T_APPN, ESME_RUNKNOWNERR = 0x64, 0xFF
ESM_RECEIPT_BITS = 0x04 | 0x08 | 0x20  # SMSC receipt, SME ack, intermediate notification
ESM_UDHI = 0x40
COMMAND_NAMES = {code: name for name, code in command_codes.commands.items()}


class Sequences:
    """Request sequence numbers, 1 to 0x7FFFFFFF and round again; one generator outlives reconnects.
    smpplib's PDU classes (the bind) draw from it as their "client"."""

    def __init__(self) -> None:
        self.sequence = 0

    def next_sequence(self) -> int:
        self.sequence = self.sequence % 0x7FFFFFFF + 1
        return self.sequence


def status_text(status: int) -> str:
    """`ESME_RINVDSTADR (0x0B)`: how a refusal reads in logs, bounces and `smsgw queue list`."""
    return f"{STATUS_NAMES.get(status, 'UNKNOWN')} (0x{status:02X})"


def classify_status(status: int) -> Outcome:
    return STATUS_OUTCOMES.get(status, Outcome.REJECTED)


def normalise_message_id(raw: str | bytes | None, mode: str, *, receipt: bool) -> str:
    """The key under which a submit and its receipts meet.

    `mode` is the conversion applied to the submit_sm_resp id so that it reads like the receipt's:
    "hex_to_dec" (the SMSC answers in hex, reports in decimal) or "dec_to_hex"; "as_is" converts
    nothing. Both sides are then lower-cased and stripped of leading zeros (Kannel, jasmin).
    `receipt` is for a receipt text's `id:` only: a receipted_message_id TLV repeats the
    submit_sm_resp's id (SMPP 3.4 5.3.2.12) and is converted like it (`smsc.receipts._message_key`).
    """
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("latin-1")
    text = (raw or "").replace("\x00", "").strip()
    if text and not receipt and mode in ("hex_to_dec", "dec_to_hex"):
        with contextlib.suppress(ValueError):
            text = str(int(text, 16)) if mode == "hex_to_dec" else format(int(text, 10), "x")
    text = text.lower()
    return text.lstrip("0") or ("0" if text else "")


def source_address(source: str, ton: int | None = None, npi: int | None = None) -> tuple[int, int, str]:
    """(TON, NPI, address) for our sender: "+digits" → 1/1 without "+"; a short code of at most
    SHORT_CODE_DIGITS digits (premium numbers such as 7155) → 3/0, network specific; a longer number →
    2/1, national; anything else → 5/0 alphanumeric. The link's `source_ton`/`source_npi` override either
    value of a phone number. An alphanumeric sender is 5/0 whatever they say, as Kannel's autodetection
    sends it: 'ACME' as an international number (1/1, set for the link's numbers) was refused by the
    SMSC (ESME_RINVSRCADR: every SMS of the account failed, suspending it) or mangled. So was a short
    code: it takes only a type of number a short code can be (SHORT_CODE_TONS), and no NPI 1 (E.164)."""
    if source.startswith("+") and source[1:].isdigit():
        auto = (1, 1, source[1:])
    elif source.isdigit() and len(source) <= SHORT_CODE_DIGITS:
        return (ton if ton in SHORT_CODE_TONS else 3, npi if npi is not None and npi != 1 else 0, source)
    elif source.isdigit():
        auto = (2, 1, source)
    else:
        return (5, 0, source)
    return (auto[0] if ton is None else ton, auto[1] if npi is None else npi, auto[2])


# "00" to "99": a date's two-digit fields by indexing, not by formatting each number.
_TWO_DIGITS = tuple(f"{i:02d}" for i in range(100))


def smpp_time(when: datetime) -> str:
    """Absolute UTC in SMPP's `YYMMDDhhmmsstnnp` form, as Kannel sends it.

    Put together from the fields, not by `strftime("%y%m%d%H%M%S")` (a datetime's strftime imports
    the time module and builds a time tuple at every call, some 15,000 instructions a submit, a
    third of its encoding); `tests/test_smpp_time.py` holds the two to the same text."""
    if when.tzinfo is not UTC:  # the dispatcher's validity is UTC already (`gateway.outbound`)
        when = when.astimezone(UTC)
    two = _TWO_DIGITS
    return "".join(
        (two[when.year % 100], two[when.month], two[when.day], two[when.hour], two[when.minute],
         two[when.second], "000+")
    )  # fmt: skip


# The longest relative validity written (99 days): SMPP's relative form has two digits a field, and
# its months and years have no fixed length (7.1.1); the gateway's own validity is at most 30 days.
_MAX_RELATIVE_SECONDS = 99 * 86400 + 86399


def smpp_relative(seconds: float) -> str:
    """A relative validity in SMPP's `YYMMDDhhmmss000R` form (7.1.1): what is left of the part's
    validity when it is submitted, counted by the SMSC from when it takes the submit_sm.

    Not absolute: an absolute time is read on the SMSC's clock, and one whose clock or zone differs from
    ours (a UTC time read as local, a clock hours off) expired SMS early or kept them long. Rounded down,
    never past the part's expiry; 1 s at least (an SMSC may read all zeros as its default validity)."""
    left = min(max(int(seconds), 1), _MAX_RELATIVE_SECONDS)
    days, left = divmod(left, 86400)
    hours, left = divmod(left, 3600)
    two = _TWO_DIGITS
    return "".join(("0000", two[days], two[hours], two[left // 60], two[left % 60], "000R"))


def read_smpp_time(text: str, now: datetime) -> datetime | None:
    """An SMPP time (7.1.1) as the UTC moment it names, read at `now` (when the PDU came) for a
    relative one; None for an empty or malformed one. Absolute: `YYMMDDhhmmsstnnp`, local time
    `nn` quarter hours ahead of UTC (`+`) or behind it (`-`). Relative: `YYMMDDhhmmss000R`, years of
    365 days and months of 30 (the SMSC's reading is its own; ours sends days at most)."""
    if len(text) != 16 or not text[:15].isascii() or not text[:15].isdigit():
        return None
    fields = [int(text[i : i + 2]) for i in range(0, 12, 2)]
    if text[15] == "R":
        years, months, days, hours, minutes, seconds = fields
        days += years * 365 + months * 30
        return now + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if text[15] not in "+-" or int(text[13:15]) > 48:
        return None
    try:
        local = datetime(2000 + fields[0], *fields[1:], tzinfo=UTC)
    except ValueError:
        return None
    local += timedelta(milliseconds=100 * int(text[12]))
    offset = timedelta(minutes=15 * int(text[13:15]))
    return local - offset if text[15] == "+" else local + offset


class BadDestination(ValueError):
    """The part's destination is not an E.164 number: no SMSC will take it, now or later."""


# The submit_sm fields a part sets (`submit_values`), in `smsc.smpp.codec.encode_submit`'s order.
SUBMIT_VALUES = (
    "source_addr_ton",
    "source_addr_npi",
    "source_addr",
    "destination_addr",
    "esm_class",
    "validity_period",
    "registered_delivery",
    "data_coding",
    "short_message",
)
SubmitValues = tuple[int, int, str, str, int, str, int, int, bytes]


def submit_values(sms: OutboundSms, cfg: LinkSettings, now: float | None = None) -> SubmitValues:
    """The submit_sm fields one part sets (`SUBMIT_VALUES`), for `smsc.smpp.codec.encode_submit`;
    ValueError names what cannot be sent. `now` (epoch seconds) is the daemon's clock, which the part's
    expiry was set by: a relative validity is the time left on it (`validity_period`)."""
    dest = sms.destination.removeprefix("+")
    if not dest.isdigit():
        raise BadDestination(f"destination {sms.destination!r} is not an E.164 number")
    ton, npi, src = source_address(sms.source, cfg.source_ton, cfg.source_npi)
    payload = sms.payload
    if sms.data_coding == 0 and cfg.dc0_charset == "latin1":
        # Planned in GSM 03.38 (same characters, never more octets); written as the SMSC reads it.
        # The GSM characters Latin-1 lacks (Greek capitals, the euro sign) are planned UCS-2 while a
        # link reads Latin-1 (`Config.dc0_latin1`); one planned before that setting went as "?".
        payload = gsm_decode(payload).encode("latin-1", "replace")
    short_message = sms.udh + payload
    if len(short_message) > 254:
        raise ValueError(f"short_message of {len(short_message)} octets exceeds 254")
    return (
        ton,
        npi,
        src,
        dest,
        ESM_UDHI if sms.udh else 0,
        validity_period(sms, cfg, now),
        1 if sms.want_report else 0,
        sms.data_coding,
        short_message,
    )


def validity_period(sms: OutboundSms, cfg: LinkSettings, now: float | None = None) -> str:
    """The part's validity as the link's `validity_format` says: relative (the default: the time left
    on the daemon's clock `now`, the host's without it) or absolute UTC, as Kannel sends it, for an
    SMSC that takes no relative one; empty for the SMSC's default."""
    if sms.validity is None:
        return ""
    if cfg.validity_format == "absolute":
        return smpp_time(sms.validity)
    return smpp_relative(sms.validity.timestamp() - (time.time() if now is None else now))


ESME_RINVEXPIRY = 0x62  # the validity refused: `smsc.smpp.validityform.ValidityForm` reads it


def submit_fields(sms: OutboundSms, cfg: LinkSettings) -> dict[str, Any]:
    """submit_sm fields for one part under smpplib's names, as `smsc.smpp.codec.encode_sm` takes them
    (the link writes the same by position: `submit_values`); ValueError names what cannot be sent."""
    return {
        "service_type": "",
        "dest_addr_ton": 1,
        "dest_addr_npi": 1,
        "protocol_id": 0,
        "priority_flag": 0,
        "schedule_delivery_time": "",
        "replace_if_present_flag": 0,
        "sm_default_msg_id": 0,
        **dict(zip(SUBMIT_VALUES, submit_values(sms, cfg), strict=True)),
    }


def field_text(value: object) -> str:
    """A C-octet string field as text: smpplib hands over bytes, NULs included; the codec, text."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1").replace("\x00", "")
    return "" if value is None else str(value)


def _phone(addr: object, ton: object) -> str:
    """An address as the gateway keys phones: TON 1 (international) digits as E.164 with "+".

    Some SMSCs write an international number with its dialling prefix, `0048601123456` under TON 1;
    "+0048..." would be no phone at all (its STOP ignored, its answer outside the conversation), so
    the "00" goes first, as Kannel strips it. Others write a national number with its trunk "0"
    (`0601700101`) under TON 1: no country code starts with 0, so "+0601700101" was no phone either
    and a receipt naming it matched no SMS; such digits stay as written, for the gateway to read as a
    national number of its `default_region`, as it reads CIMD2's. Blanks around it go (`unpadded`)."""
    text = unpadded(field_text(addr))
    if ton != 1 or not text.isdigit():
        return text
    if text.startswith("00"):
        return "+" + (text[2:] if len(text) > 2 else text)
    return text if text.startswith("0") else "+" + text


def delivery_report(pdu: Any, data: bytes, mode: str) -> DeliveryReport | None:
    """The receipt a deliver_sm or data_sm carries, or None when it is not a usable one."""
    return parse_receipt(
        short_message=data,
        tlvs={k: getattr(pdu, k, None) for k in ("receipted_message_id", "message_state",
                                                  "network_error_code")},
        normalise=lambda raw: normalise_message_id(raw, mode, receipt=True),
        # SMPP 3.4 5.3.2.12: the TLV is the id the submit_sm_resp gave, so it takes that id's conversion.
        normalise_tlv=lambda raw: normalise_message_id(raw, mode, receipt=False),
        destination=_phone(pdu.source_addr, pdu.source_addr_ton) or None,
        data_coding=getattr(pdu, "data_coding", 0) or 0,
    )  # fmt: skip


# data_coding values SMPP 3.4 (5.2.19) gives character sets of their own: Cyrillic, Hebrew,
# ISO-2022-JP and KS C 5601 (JIS X 0208/0212, 5 and 0x0D, have no codec of their own in Python).
SMPP_CHARSETS = {6: "iso8859_5", 7: "iso8859_8", 0x0A: "iso2022_jp", 0x0E: "cp949"}


def inbound_sms(pdu: Any, data: bytes, esm: int, dc0_charset: str = "gsm") -> InboundSms:
    """A mobile-originated deliver_sm or data_sm; concatenation from the UDH, else from the SAR TLVs.
    A UDH longer than the data is mailed as damaged, or read as text when the data does not start
    like a UDH (`smsc.decoding.decode_user_data`; the caller logs it).
    `dc0_charset` is the link's reading of data_coding 0 (`LinkSettings.dc0_charset`)."""
    dc = getattr(pdu, "data_coding", 0) or 0
    udhi = bool(esm & ESM_UDHI)
    ref, total, part = (getattr(pdu, f, None) for f in ("sar_msg_ref_num", "sar_total_segments",
                                                         "sar_segment_seqnum"))  # fmt: skip
    # As for the UDH (23.040): a position past the total is ignored, the text kept as it is,
    # instead of a segment of a set that can never be complete.
    sar = None
    if ref is not None and total and part and part <= total:
        sar = Concat(ref=ref, total=total, seq=part)
    charset = SMPP_CHARSETS.get(dc)
    if dc == 0 and dc0_charset == "latin1":
        text, concat = decode_user_data(data, 3, udhi=udhi)  # SMPP's data_coding 3: Latin-1
    elif charset is not None:  # SMPP 3.4's own codes, where 23.038's groups would read Latin-1 or UCS-2
        text, concat = decode_user_data(data, 3, udhi=udhi)  # the octets one to one, as Latin-1 reads them
        text = text.encode("latin-1").decode(charset, "replace")
    else:
        text, concat = decode_user_data(data, dc, udhi=udhi, segment=sar is not None and sar.total > 1)
    concat = concat or sar
    return InboundSms(
        source=_phone(pdu.source_addr, pdu.source_addr_ton),
        destination=_phone(pdu.destination_addr, pdu.dest_addr_ton),
        text=text,
        data_coding=dc,
        concat=concat,
        received_at=datetime.now(UTC),
        raw={"esm_class": f"0x{esm:02X}", "source_ton": str(pdu.source_addr_ton),
             "dest_ton": str(pdu.dest_addr_ton), "data": data.hex()},
    )  # fmt: skip
