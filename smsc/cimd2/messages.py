"""CIMD2 packets to and from the `smsc.base` types: an `OutboundSms` part as submit (03) parameters, a
submit response as a `SubmitResult` (900 error codes mapped to outcomes), a deliver (20) as
`InboundSms` and a status report (23) as `DeliveryReport`. Kept apart from `link.py` because these
rules are the protocol's meaning rather than its conversation, and they need no connection to test.

CIMD2 has no message id. The key for DLR matching is `"{060 timestamp}:{destination digits}"`: the
submit response's 060 with the phone in E.164 (the SMS's recipient), the status report's 060 with the
number as its 021 wrote it (`report_key`), each 060 as its 12 digits (`stamp_digits`); a submit
answered with a 060 that is no full time gets no key. The store matches the two within the 060 second by the
number's last digits (`gateway.store.reports.stamped_key`), as an SMSC writes one phone several ways.
One phone's submits go a second apart (`smsc.cimd2.spacing`), so that no two of them share a key.
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import structlog

from smsc.base import DeliveryReport, InboundSms, OutboundSms, Outcome, ReportStatus, SubmitResult, unpadded
from smsc.cimd2.charset import cimd_decode, septets_to_cimd
from smsc.cimd2.codes import STATUS_CODES, error_text, status_error_text
from smsc.cimd2.packet import (
    FORBIDDEN,
    Op,
    P,
    Packet,
    address_digits,
    without_numbers,
)
from smsc.cimd2.times import parse_time, read_stamp, stamp_digits, validity_code
from smsc.decoding import decode_user_data, is_gsm7, unpack_septets
from smsc.encoding import parse_udh
from smsc.gsmshifts import DEFAULT, marked, shifts_of
from smsc.settings import LinkSettings

# What a status report may quote of the SMS (protocols.md 1.9): never kept in its raw form.
TEXT_PARAMS = frozenset({P.USER_DATA, P.USER_DATA_BINARY})

log = structlog.get_logger(__name__)

Warn = Callable[..., Any]

# 900 code of a negative submit response (53) → Outcome. 2/3/8 and 302–304 say that we built something
# the SMSC cannot parse (syntax, parameter, user data, DCS): permanent like a rejection, but a bug of
# ours rather than a verdict on the recipient. Other 3xx codes: REJECTED. Anything not listed: TEMPORARY.
# Not for a general error (98), whatever its code: see `submit_result`.
ERROR_OUTCOMES: dict[int, Outcome] = {
    2: Outcome.MALFORMED,
    3: Outcome.MALFORMED,
    8: Outcome.MALFORMED,
    10: Outcome.THROTTLED,
    302: Outcome.MALFORMED,
    303: Outcome.MALFORMED,
    304: Outcome.MALFORMED,
}
_NUMERIC = re.compile(r"\+?[0-9]{1,20}")


def outcome_for_error(code: int) -> Outcome:
    if code in ERROR_OUTCOMES:
        return ERROR_OUTCOMES[code]
    return Outcome.REJECTED if 300 <= code <= 399 else Outcome.TEMPORARY


LOGIN_RULE = "ISO-8859-1 without TAB, NUL, STX or ETX"  # what a login (01) can carry


def login_params(user: str, password: str) -> list[tuple[int, str]]:
    """The login (01) parameters; ValueError, which names no character of either, when they cannot
    go on the wire."""
    for value in (user, password):
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"user identity and password must be {LOGIN_RULE}") from None
        if any(ch in FORBIDDEN for ch in value):
            raise ValueError(f"user identity and password must be {LOGIN_RULE}")
    return [(P.USER_IDENTITY, user), (P.PASSWORD, password)]


NEVER = "never"  # `LinkSettings.sender_prefix`: no 023 at all, the SMSC sends from the interface's number
_WARNED_MAX = 1000  # (link, sender) pairs remembered as warned of: a pool of numbers cannot grow it further
_warned: OrderedDict[tuple[str, str], None] = OrderedDict()


def international_digits(number: str) -> str:
    """A number's digits with its international form's "+" or "00" taken off, so that a prefix and a
    sender written in different forms ("+48500100", "0048500100200") still compare."""
    digits = number.removeprefix("+")
    return digits[2:] if digits.startswith("00") else digits


def carries(source: str, prefix: str | None) -> bool:
    """Whether phones see `source` itself on a link with this `sender_prefix` (`sub_address`): a
    premium answer must come from its short code, and the gateway refuses one a link would send
    from the interface's number instead (gateway.premium.shortcode)."""
    if prefix is None:
        return True
    return prefix != NEVER and international_digits(source).startswith(international_digits(prefix))


def sub_address(source: str, prefix: str | None, *, link: str) -> str | None:
    """The 023 of a numeric sender, or None for none. The SMSC appends 023 to the number configured in
    the interface's profile (protocols.md 1.5): with that number as `prefix` the sender goes as what
    follows it, and as nothing when it is the number itself. A sender outside the prefix cannot be
    written as a sub-address at all; sent whole it would reach phones as the interface's number with
    ours appended, so it goes without 023, as Kannel's sender-prefix does, and the admin is told."""
    if prefix is None:
        return source
    if prefix == NEVER:
        return None
    if carries(source, prefix):
        return international_digits(source)[len(international_digits(prefix)) :] or None
    key = (link, source)
    if key in _warned:
        _warned.move_to_end(key)
    else:
        _warned[key] = None
        if len(_warned) > _WARNED_MAX:
            _warned.popitem(last=False)
        log.warning(
            "cimd2.sender_outside_prefix", link=link, sender=source, sender_prefix=prefix,
            sent="without 023: phones see the interface's own number",
        )  # fmt: skip
    return None


def submit_params(
    sms: OutboundSms, cfg: LinkSettings | None = None, now: float | None = None
) -> list[tuple[int, str]]:
    """The submit (03) parameters for one part; ValueError names what cannot be sent. `cfg` gives the
    link's `sender_prefix` (`sub_address`); without it a numeric sender goes whole in 023. `now` (epoch
    seconds) is the daemon's clock, which the part's expiry was set by: the relative validity is the
    time left on that clock, not the host's (a daemon on another clock told the SMSC days too few or
    too many). Without it, the host's clock."""
    params: list[tuple[int, str]] = [(P.DESTINATION, sms.destination)]
    if _NUMERIC.fullmatch(sms.source):
        prefix, link = (cfg.sender_prefix, cfg.name) if cfg is not None else (None, "")
        if (originator := sub_address(sms.source, prefix, link=link)) is not None:
            params.append((P.ORIGINATOR, originator))
    elif sms.source:
        if len(sms.source) > 11:
            raise ValueError(f"alphanumeric originator {sms.source!r} is longer than 11 characters")
        params.append((P.ALPHA_ORIGINATOR, sms.source))
    if sms.validity is not None:
        seconds = sms.validity.timestamp() - (time.time() if now is None else now)
        params.append((P.VALIDITY_RELATIVE, str(validity_code(seconds))))
    if cfg is None or cfg.status_reports:  # off: no 056 at all, which such an account refuses (310)
        params.append((P.STATUS_REPORT_REQUEST, "14" if sms.want_report else "0"))
    if sms.udh:
        concat = parse_udh(sms.udh)
        if concat is not None and concat.seq < concat.total:
            params.append((P.MORE_MESSAGES, "1"))
        params.append((P.UDH, sms.udh.hex().upper()))
    if sms.data_coding == 0:
        user_data = septets_to_cimd(sms.payload)
        if len(user_data) > 480:
            raise ValueError(f"033 would be {len(user_data)} characters, more than 480")
        params.append((P.USER_DATA, user_data))
    else:
        params.append((P.USER_DATA_BINARY, sms.payload.hex().upper()))
        params.append((P.DCS, str(sms.data_coding)))
    return params


# A key (060:digits) longer than this is none: a 060 of 12 digits and a number of 20 make 33. The bound
# SMPP 3.4 gives a message_id (`smsc.smpp.codec.MAX_MESSAGE_ID`): a 060 or 021 of 4 KB, which a
# packet can carry, was stored whole as a part's or an unmatched report's id.
MAX_KEY = 64
UNREADABLE_CODE_SHOWN = 16  # characters of a 900 that is no number a part's error quotes


REPORTS_REFUSED = 310  # "incorrect status report request": an account that takes no 056


def reports_refused(link: str) -> str:
    quoted = json.dumps(link, ensure_ascii=False)  # as TOML quotes it (gateway.configbase.quoted)
    return f"the SMSC account refuses status report requests: set status_reports = false in [[smsc]] {quoted}"


def submit_result(
    sms: OutboundSms, resp: Packet, *, link: str, unstamped: Warn = log.warning
) -> SubmitResult:
    code = resp.get_int(P.ERROR_CODE)
    if resp.op == Op.GENERAL_ERROR:
        # Only a submit response (53) with a 900 judges the message; a 98 says the SMSC could not
        # process a packet, whatever 900 it carries (an SMSC answers 98 900:2 to a packet number it
        # did not expect, or to a packet mangled on the way): a temporary failure, sent again after
        # the new login (protocols.md 1.13). Its text is not "CIMD2 900:…", which `gateway.reasons`
        # reads as the SMSC's verdict on the SMS.
        code = code or 1
        text = resp.get(P.ERROR_TEXT) or error_text(code)
        return SubmitResult(Outcome.TEMPORARY, error=f"CIMD2 general error (98), 900:{code} {text}")
    if code:
        text = resp.get(P.ERROR_TEXT) or error_text(code)
        if code == REPORTS_REFUSED:  # the account's setting, not the SMS: said with the key to change
            text += f": {reports_refused(link)}"
        return SubmitResult(outcome_for_error(code), error=f"CIMD2 900:{code} {text}")
    if code is None and (given := resp.get(P.ERROR_CODE)) is not None and given.strip():
        # A 900 that is no number (`900:E300`) still says the SMSC refused: read as no code, it
        # left the part submitted with no key for its report. Its verdict unknown, the part is
        # tried again (TEMPORARY), under the SMSC's 901 words; not as "CIMD2 900:<code>", which
        # `gateway.reasons` would read as a code. A blank 900 says nothing: read as absent, as
        # Kannel reads it (it refuses only a code above 0).
        shown = without_numbers(given[:UNREADABLE_CODE_SHOWN])
        text = resp.get(P.ERROR_TEXT) or "no 901 text"
        return SubmitResult(Outcome.TEMPORARY, error=f"CIMD2 unreadable error code 900 {shown!r}: {text}")
    scts = resp.get(P.SCTS)
    if scts and len(f"{scts}:{key_digits(sms.destination)}") > MAX_KEY:
        # A 060 of up to 4 KB makes no key (`MAX_KEY`): the part is taken with none, as with no 060
        # at all, rather than stored with it.
        log.warning("cimd2.submit_response_overlong_060", link=link, length=len(scts))
        return SubmitResult(
            Outcome.ACCEPTED, error="SMSC gave an over-long 060 timestamp: no delivery report match"
        )
    if resp.op != Op.SUBMIT_RESP or not scts:
        log.warning("cimd2.submit_response_without_060", link=link, packet=resp.describe())
        return SubmitResult(Outcome.ACCEPTED, error="SMSC gave no 060 timestamp: no delivery report match")
    if (stamp := stamp_digits(scts)) is None:
        # A 060 that is no full yymmddhhmmss (no seconds, letters; a zone after the 12 digits is read:
        # `read_stamp`) names no one SMS: with an SMSC writing minutes, two SMS to one phone in a
        # minute shared a key, each took the other's report, and a delivered one was bounced.
        # Taken with no key, as with no 060: it ends `unreported`, never wrongly. `unstamped` is the
        # link's warning, said once per link.
        unstamped("cimd2.submit_060_not_a_time", link=link, length=len(scts), packet=resp.describe(),
                  effect="no SMS on this link can be matched to its delivery report")  # fmt: skip
        return SubmitResult(
            Outcome.ACCEPTED, error="SMSC gave a 060 that is no full time: no delivery report match"
        )
    # The phone in E.164, as the gateway addressed it, not the 021 echoed: an SMSC that answers with
    # the national "601569013" reports "+48601569013", or the other way round (`report_key`). The
    # stamp as its 12 digits (`stamp_digits`), as a report's is: one the SMSC wrote with its century
    # in one and not the other matched nothing.
    return SubmitResult(Outcome.ACCEPTED, message_id=f"{stamp}:{key_digits(sms.destination)}")


class Once:
    """A warning said the first time only, for what one link's SMSC does with every packet (a 060
    that is no time): one line says it; thousands say no more."""

    def __init__(self, warn: Warn) -> None:
        self._warn, self._said = warn, False

    def __call__(self, event: str, **fields: Any) -> None:
        if not self._said:
            self._said = True
            self._warn(event, **fields)


def logged_error(error: str | None, resp: Packet) -> str | None:
    """A `submit_result` error as a log line shows it: the SMSC's 901 text in it `without_numbers`, as
    it may quote the destination. The part keeps the error whole (admins read the SMSC's words in
    `queue show`); the 900 code and our own words around the text stay readable in the log."""
    text = resp.get(P.ERROR_TEXT)
    if not error or not text:
        return error
    return error.replace(text, without_numbers(text))


def key_digits(address: str) -> str:
    """The number in a key (060:digits): "+48…", "48…" or with the international prefix "0048…" are
    "48…"; a national form ("601…", "0601…") stays as written, for the store to match by its end."""
    digits = address_digits(address)
    return digits[2:] if digits.startswith("00") and len(digits) > 2 else digits


def report_key(scts: str, destination: str) -> str:
    """A status report's key: its 060 as its 12 digits (`stamp_digits`, as the submit answer's) and its
    021 as `key_digits` reads it. The number may be in a form other than the submit answer's E.164
    one; the gateway, which knows the `default_region`, reads it (`gateway.events`), and the store
    matches it by the number's end within the second. A 060 that is no full time stays as written:
    no submit's key has such a stamp, so the report is kept unmatched and logged as such."""
    return f"{stamp_digits(scts) or scts}:{key_digits(destination)}"


def parse_mo(packet: Packet, *, link: str, warn: Warn = log.warning) -> InboundSms | str:
    """A deliver (20) as `InboundSms`, or why it cannot be handed up. `warn` is the connection's
    throttled warning: an SMSC can send a bad UDH or status in every PDU. A valid 060 is also in
    `raw["smsc_time"]`, as its 12 digits (`read_stamp`)."""
    # Read once without the blanks around them (`unpadded`): "7355 " was no premium number.
    destination, source = unpadded(packet.get(P.DESTINATION) or ""), unpadded(packet.get(P.ORIGINATOR) or "")
    alphanumeric = False
    if not source and (alpha := packet.get(P.ALPHA_ORIGINATOR)):
        # A sender that is no number ("ORANGE") comes in 027 with no 023, in the CIMD character set as
        # 033 is. With 023 alone read, such an MO was answered 70 and dropped: the SMSC counted it
        # delivered. Taken as written, as SMPP's deliver_sm from TON 5: the gateway records it, and as
        # no phone it is never an opt-out nor answered.
        source, alphanumeric = unpadded(cimd_decode(alpha)), True
    if not destination or not source:
        return "empty destination or originator address"
    data_coding = packet.get_int(P.DCS) or 0
    if not 0 <= data_coding <= 255:
        data_coding = 0
    concat, shifts = None, DEFAULT
    if udh := packet.get(P.UDH):
        try:
            header = bytes.fromhex(udh)
            concat, shifts = parse_udh(header), shifts_of(header)
        except ValueError:
            warn("cimd2.bad_udh", link=link, udh=udh[:40])
    # Read after the UDH: in a segment, a character cut at an edge is kept for the join to mend (a
    # "set" of one part is whole: nothing joins it, and a marker kept would reach the user's mail).
    segment = concat is not None and concat.total > 1
    text = packet.get(P.USER_DATA)
    if text is not None:
        # GSM codes (protocols.md 1.11), read with the national shift tables 032 names.
        text = marked(cimd_decode(text, segment=segment, shifts=shifts), shifts, segment=segment)
    elif (binary := packet.get(P.USER_DATA_BINARY)) is not None:
        try:
            data = bytes.fromhex(binary)
        except ValueError:
            # Acknowledged and dropped, a premium one the phone paid for was never recorded nor the
            # operator told. Handed up as SMPP's damaged user data is: said to be so, with what came.
            warn("cimd2.bad_user_data", link=link, length=len(binary))  # its length: no text in the log
            text = unreadable_text(binary)
        else:
            if is_gsm7(data_coding, smpp=False):
                # Binary user data with a GSM DCS is the air interface's packed septets (protocols.md
                # 1.10): read as one character per octet, a STOP came out as 'SêΓ\n' and was missed.
                data, data_coding = unpack_septets(data), 0
            text, _ = decode_user_data(data, data_coding, segment=segment, smpp=False, shifts=shifts)
    else:
        # Neither 033 nor 034: an SMS the phone sent empty, as SMPP's empty short_message (and an empty
        # 033 or 034) is. Dropped with a 70, a premium one the phone paid for reached no one and was
        # never recorded; handed up, it is recorded and mailed (a reply as "(the SMS was empty)").
        text = ""
    if source.startswith("00") and source[2:].isdigit():
        source = "+" + source[2:]
    raw = {f"{c:03d}": v for c, v in packet.params}
    if alphanumeric:
        # TON 5 for the gateway's reading (`gateway.events`): a sender ID of digits alone ("601123456")
        # read as a number made its STOP opt a real subscriber out.
        raw["source_ton"] = "5"
    scts, received_at = read_stamp(packet.get(P.SCTS)) or (None, None)
    if scts is not None:
        # Also under a name of no protocol's, for the gateway: a copy the SMSC delivers again carries
        # the same 060, the same text sent again by the phone a new one. Its 12 digits, whatever
        # blanks or century the SMSC wrote around them. One that reads as no time is left out, and
        # the gateway judges by the acknowledgements alone, as for SMPP.
        raw["smsc_time"] = scts
    return InboundSms(
        source=source, destination=destination, text=text, data_coding=data_coding, concat=concat,
        received_at=received_at, raw=raw,
    )  # fmt: skip


UNREADABLE_SHOWN = 600  # characters of a 034 that is no hex a mail shows: an SMSC's field has no limit


def unreadable_text(binary: str) -> str:
    """What a user is shown of an MO whose 034 is no hex: that it came damaged, and the field as the
    SMSC wrote it (its start, for a long one), as `smsc.decoding.damaged_text` shows SMPP's octets."""
    shown = binary if len(binary) <= UNREADABLE_SHOWN else binary[:UNREADABLE_SHOWN] + " …"
    count = "1 character" if len(binary) == 1 else f"{len(binary)} characters"
    return (
        "[The SMS came damaged: its binary user data (034) is not hex; no text is left."
        f" The 034 as the SMSC wrote it ({count}):]\n{shown}"
    )


def parse_report(packet: Packet, *, link: str, warn: Warn = log.warning) -> DeliveryReport | str:
    """A status report (23) as `DeliveryReport`, or why it cannot be handed up."""
    scts, destination = packet.get(P.SCTS), packet.get(P.DESTINATION)
    if not scts or not destination or not address_digits(destination):
        return "status report without 060 or 021"
    if len(report_key(scts, destination)) > MAX_KEY:
        return "status report whose 060 and 021 make a key too long to be one"
    code, reason = packet.get_int(P.STATUS_CODE), packet.get_int(P.STATUS_ERROR_CODE)
    meaning, status = STATUS_CODES.get(code or 0, ("unknown status", ReportStatus.PENDING))
    if code not in STATUS_CODES:
        warn("cimd2.unknown_status", link=link, packet=packet.describe())
    error = None
    if status is ReportStatus.FAILED:
        error = f"CIMD2 061:{code} {meaning}"
        if reason is not None:
            error += f" 062:{reason} {status_error_text(reason)}"
    return DeliveryReport(
        message_id=report_key(scts, destination), status=status, error=error,
        destination=destination, done_at=parse_time(packet.get(P.DISCHARGE_TIME)),
        # 033/034 (a report may quote the SMS) without their value: see `smsc.receipts.without_text`.
        raw=" ".join(f"{c:03d}:{'' if c in TEXT_PARAMS else v}" for c, v in packet.params),
    )  # fmt: skip
