"""SMPP delivery receipts: TLVs and the `id:… stat:… err:…` text, turned into a `DeliveryReport`.

The receipt format is vendor-specific, so the parser trusts the TLVs first (receipted_message_id,
message_state, network_error_code) and then reads the text one field at a time with small regexes,
as Kannel's fallback and Jasmin's `isDeliveryReceipt` do, rather than one rigid pattern. It returns
None for anything that is not a usable receipt (an id longer than SMPP 3.4 allows is no id) and never
raises: the bytes come from the network.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import structlog

from smsc.base import DeliveryReport, ReportStatus
from smsc.logthrottle import LogThrottle
from smsc.makers import maker
from smsc.smpp.codec import MAX_MESSAGE_ID

# The data_coding of UCS-2 text (SMPP 3.4 5.2.19).
UCS2 = 0x08

log = structlog.get_logger(__name__)
# An SMSC sends the same broken receipt for every SMS: one line a second per kind of error.
_unparseable = LogThrottle(log)
# DeliveryReport(message_id, status, error, destination, done_at, raw) without its frozen __init__
# (`smsc.makers`): one a receipt.
_report = maker(DeliveryReport)

# SMPP 3.4 message_state values and the receipt `stat:` words that share their meaning.
MESSAGE_STATES: dict[int, str] = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}

# Kannel's mapping: ACCEPTD is formally final but operators use it as "taken by the network".
_PENDING_STATS = frozenset({"ENROUTE", "ACCEPTD", "BUFFRED", "ACKED", "1", "6"})
# Stat words some SMSCs spell out instead of SMPP 3.4's seven letters (appendix B), read as the word
# they spell; Kannel also takes BUFFERD for BUFFRED. Only DELIVRD was delivered: `stat:DELIVERED`
# bounced a delivered SMS (Kannel fails it too; Jasmin reads the first seven letters, "DELIVER").
# The receipt's error keeps the SMSC's own word (`gateway.reasons` words it alike).
STAT_SPELLINGS = {
    "DELIVERED": "DELIVRD",
    "UNDELIVERED": "UNDELIV",
    "UNDELIVERABLE": "UNDELIV",
    "ACCEPTED": "ACCEPTD",
    "REJECTED": "REJECTD",
    "BUFFERED": "BUFFRED",
    "BUFFERD": "BUFFRED",
}
_DELIVERED_STATS = frozenset({"DELIVRD", "2"})

# A field's value may follow its colon after blanks, but never the next field's name: `stat: err:000`
# has an empty stat (read as "ERR", it failed a message whose state nobody knew), `id: sub:001` no id.
_NOT_A_NAME = r"(?!(?:id|sub|dlvrd|submit[\s_]*date|done[\s_]*date|stat|err|text):)"
# Each field on its own, so that a missing or reordered field does not hide the others.
_FIELD_RES: dict[str, re.Pattern[str]] = {
    name: re.compile(rf"{key}:\s*{_NOT_A_NAME}({value})", re.IGNORECASE)
    for name, key, value in (
        ("id", r"(?:^|[\s,;])id", r"[^\s,;]+"),
        ("sub", r"\bsub", r"\d+"),
        ("dlvrd", r"\bdlvrd", r"\d+"),
        ("submit_date", r"\bsubmit[\s_]*date", r"\d{10,12}"),
        ("done_date", r"\bdone[\s_]*date", r"\d{10,12}"),
        ("stat", r"\bstat", r"[A-Za-z0-9_]+"),
        ("err", r"\berr", r"[0-9A-Za-z]+"),
    )
}
# The free text comes last and may itself contain "stat:" or "id:"; fields are read before it only.
_TEXT_RE = re.compile(r"\btext:(.*)\Z", re.IGNORECASE | re.DOTALL)
# SMPP 3.4 appendix B's layout, which nearly every SMSC sends: one match instead of eight searches.
# The values are narrower than the field patterns above (no separators, no colons), so that no
# field can hide inside another and the result is the one the field-by-field reading gives.
_STANDARD_RE = re.compile(
    r"id:([0-9A-Za-z]+) sub:([0-9]+) dlvrd:([0-9]+)"
    r" submit date:([0-9]{10,12}) done date:([0-9]{10,12})"
    r" stat:([0-9A-Za-z_]+) err:([0-9A-Za-z]+)(?: text:(.*))?",
    re.DOTALL,
)
_STANDARD_KEYS = ("id", "sub", "dlvrd", "submit_date", "done_date", "stat", "err")


def classify_stat(stat: str) -> ReportStatus:
    """Map a receipt `stat:` word (or a message_state number as text) to a ReportStatus."""
    word = stat.strip().upper()
    word = STAT_SPELLINGS.get(word, word)
    if word in _DELIVERED_STATS:
        return ReportStatus.DELIVERED
    if word in _PENDING_STATS:
        return ReportStatus.PENDING
    return ReportStatus.FAILED


def parse_receipt_text(text: str) -> dict[str, str]:
    """The receipt fields found in `text` (keys as in `_FIELD_RES` plus "text"); may be empty."""
    standard = _STANDARD_RE.fullmatch(text)
    if standard is not None:
        values = standard.groups()
        fields = {} if values[7] is None else {"text": values[7]}
        fields.update(zip(_STANDARD_KEYS, values, strict=False))
        return fields
    return read_fields(text)


def without_text(raw: str) -> str:
    """`raw` with the `text:` field's value dropped (the field's name stays). An SMSC quotes the
    SMS's first 20 characters there: kept in the stored receipt, it wrote back part of a text erased
    at the phone's request, days later. The receipt is kept for diagnosis: id, stat, err and the
    dates suffice. As `read_fields` reads it, everything after `text:` is the text."""
    m = _TEXT_RE.search(raw)
    return raw if m is None or not m.group(1) else raw[: m.start(1)].rstrip()


def read_fields(text: str) -> dict[str, str]:
    """`parse_receipt_text` for any layout: each field searched for on its own."""
    fields: dict[str, str] = {}
    head = text
    m = _TEXT_RE.search(text)
    if m:
        fields["text"] = m.group(1)
        head = text[: m.start()]
    for name, pattern in _FIELD_RES.items():
        found = pattern.search(head)
        if found:
            fields[name] = found.group(1)
    return fields


def receipt_text(data: bytes, data_coding: int = 0) -> str:
    """A receipt's text by its data_coding: UCS-2 (8), as an SMSC writes the receipt of a UCS-2 SMS,
    else octets as Latin-1 (the fields are ASCII). Read as Latin-1, a UCS-2 receipt had a NUL before
    each character: no field was found in it, its SMS ended `unreported`, an UNDELIV never bounced."""
    if data_coding == UCS2:
        return data.decode("utf-16-be", "replace")
    return data.decode("latin-1")


def receipt_field_names(data: bytes, data_coding: int = 0) -> list[str]:
    """The names of the fields `data` gives a value, "text" last: what a log says of a receipt that
    cannot be used (its `text:` quotes the SMS, so the values stay out of the log)."""
    fields = read_fields(receipt_text(data, data_coding))
    return [name for name in (*_FIELD_RES, "text") if name in fields]


# The done dates read last, by their text: the receipts an SMSC sends in one minute name the same
# one, and a datetime is immutable, so the one read is given again (a datetime made from the digits
# costs some 15,000 instructions, every receipt). Emptied when full: any text is kept a while at most.
_DATES: dict[str, datetime | None] = {}
_DATES_KEPT = 64


def parse_receipt_date(value: str | None) -> datetime | None:
    """`YYMMDDhhmm` or `YYMMDDhhmmss` as UTC (receipts carry no zone; SMSCs mostly use UTC)."""
    if not value:
        return None
    try:
        return _DATES[value]
    except KeyError:
        pass
    done = _read_date(value)
    if len(_DATES) >= _DATES_KEPT:
        _DATES.clear()
    _DATES[value] = done
    return done


def _read_date(value: str) -> datetime | None:
    if not value.isdigit() or len(value) not in (10, 12):
        return None
    if not value.isascii():  # other scripts' digits: strptime takes some and not others
        return strptime_date(value)
    # Two digits a field, each in range: the reading strptime would give, without its cost.
    yy, month, day, hour, minute = (
        int(value[:2]),
        int(value[2:4]),
        int(value[4:6]),
        int(value[6:8]),
        int(value[8:10]),
    )
    second = int(value[10:]) if len(value) == 12 else 0
    if month <= 12 and hour <= 23 and minute <= 59 and second <= 59:
        try:
            return datetime(yy + (2000 if yy < 69 else 1900), month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:  # month or day 0, a day past the month's end: strptime's word on it
            pass
    return strptime_date(value)


def strptime_date(value: str) -> datetime | None:
    """`parse_receipt_date` for any digits, through strptime."""
    fmt = "%y%m%d%H%M%S" if len(value) == 12 else "%y%m%d%H%M"
    try:
        return datetime.strptime(value, fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("latin-1")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _state_from_tlv(value: object) -> int | None:
    """The message_state TLV's number; its word is `MESSAGE_STATES`' when it is one of SMPP 3.4's."""
    if isinstance(value, bytes | bytearray) and len(value) == 1:
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _network_error(value: object) -> str | None:
    # network_error_code is three octets: network type (1 GSM, 2 ANSI-136, 3 IS-95) + u16 code.
    if isinstance(value, bytes | bytearray) and len(value) == 3:
        return f"net:{value[0]}:{int.from_bytes(value[1:3], 'big')}"
    return None


def parse_receipt(
    *,
    short_message: bytes | None,
    tlvs: Mapping[str, object],
    normalise: Callable[[str], str],
    normalise_tlv: Callable[[str], str] | None = None,
    destination: str | None = None,
    data_coding: int = 0,
) -> DeliveryReport | None:
    """A DeliveryReport from a deliver_sm/data_sm's receipt, or None when it is not one we can use.

    A receipt is usable when it names a message id (TLV or text) and a state (TLV or `stat:`).
    `normalise` keys the text's `id:`; `normalise_tlv` (by default the same) keys the
    receipted_message_id TLV, which SMPP 3.4 defines as the id the submit_sm_resp gave, and so may
    need the conversion the link applies to that id where the text's id needs none. `destination`
    is the phone the link read from the PDU's addresses, given to the report as it is built; the
    text is read by the PDU's `data_coding` (`receipt_text`).
    """
    try:
        text = receipt_text(bytes(short_message), data_coding) if short_message else ""
        return _parse(text, tlvs, normalise, normalise_tlv or normalise, destination)
    except Exception as exc:  # a receipt parser must never take the link down
        _unparseable.warning("receipt.unparseable", kind=type(exc).__name__, error=repr(exc))
        return None


def _message_key(
    tlv_id: str | None,
    text_id: str | None,
    normalise: Callable[[str], str],
    normalise_tlv: Callable[[str], str],
) -> str:
    """The id a receipt is matched under: the TLV's, keyed as a submit_sm_resp id, before the text's.

    An SMSC that writes the TLV in the text's form instead (the same id twice, as Kannel and jasmin
    assume when they convert both alike) shows it by the two being equal: that id is then keyed as the
    text's, since converting it again would miss its submit."""
    if not tlv_id:
        return normalise(text_id) if text_id else ""
    if text_id == tlv_id:  # the same id twice, as nearly every SMSC writes it: keyed as the text's
        return normalise(text_id)
    if text_id:
        key = normalise(text_id)
        if normalise(tlv_id) == key:
            return key
    return normalise_tlv(tlv_id)


def _parse(
    text: str,
    tlvs: Mapping[str, object],
    normalise: Callable[[str], str],
    normalise_tlv: Callable[[str], str],
    destination: str | None = None,
) -> DeliveryReport | None:
    # The standard layout (nearly every receipt) is read here once: its match also tells where
    # its `text:` quote starts, which `without_text` would search for again.
    standard = _STANDARD_RE.fullmatch(text) if text else None
    if standard is not None:
        values = standard.groups()
        fields = dict(zip(_STANDARD_KEYS, values, strict=False))
        quote = values[7]
        if quote is not None:
            fields["text"] = quote
        kept = text.strip() if quote is None or not quote.strip() else text[: standard.start(8)].rstrip()
    else:
        fields = read_fields(text) if text else {}
        kept = without_text(text.strip()) if text.strip() else ""

    tlv_id, text_id = _as_text(tlvs.get("receipted_message_id")), fields.get("id")
    # Longer than SMPP 3.4 lets a message_id be, an id is none (`MAX_MESSAGE_ID`): kept, a 30 KB one
    # was stored whole with each receipt, which matched nothing and stayed until the purge.
    if tlv_id is not None and len(tlv_id) > MAX_MESSAGE_ID:
        tlv_id = None
    if text_id is not None and len(text_id) > MAX_MESSAGE_ID:
        text_id = None
    raw_id = tlv_id or text_id
    if not raw_id:
        return None
    message_id = _message_key(tlv_id, text_id, normalise, normalise_tlv)
    if not message_id:
        return None

    # A state SMPP 3.4 does not define (0, SMPP 5.0's SCHEDULED; 9, SKIPPED) says nothing final: read
    # as failed, it overrode a `stat:DELIVRD` and bounced a delivered SMS. The text's `stat:` decides,
    # and without one the receipt is kept as pending, settling nothing.
    state = _state_from_tlv(tlvs.get("message_state"))
    stat = (MESSAGE_STATES.get(state) if state is not None else None) or fields.get("stat")
    if stat:
        stat = stat.upper()
        status = classify_stat(stat)
    elif state is not None:
        stat, status = str(state), ReportStatus.PENDING
    else:
        return None

    error: str | None = None
    if status is ReportStatus.FAILED:
        parts = [stat]
        if "err" in fields:
            parts.append(f"err:{fields['err']}")
        net = _network_error(tlvs.get("network_error_code"))
        if net:
            parts.append(net)
        error = " ".join(parts)

    # without the SMSC's quote of the SMS (`without_text`): no diagnosis, and stored it wrote back a
    # text erased at the phone's request when the receipt came after `smsgw phone forget`
    raw = kept or f"receipted_message_id:{raw_id} message_state:{stat}"
    return _report(message_id, status, error, destination, parse_receipt_date(fields.get("done_date")), raw)
