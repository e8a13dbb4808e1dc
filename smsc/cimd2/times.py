"""CIMD2's times and validity periods: the yymmddhhmmss stamps of submits, reports and MO, and the
GSM 03.40 relative validity codes a submit carries (`validity_code` rounds down, unlike Kannel)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta


def format_time(moment: datetime) -> str:
    """yymmddhhmmss in UTC (the SMSC's zone is unknown to the protocol; test_cimd2 uses UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%y%m%d%H%M%S")


# A zone some SMSCs write after the 12 digits (protocols.md 1.4 has none): "+04"/"-08" in quarter hours
# (GSM 03.40's unit), "+0100"/"+01:00" in hours and minutes, SMPP's "tnnp" (tenths, quarter hours,
# sign: "004+") or "Z". Anything else after the digits is no time (`read_stamp`).
_STAMP = re.compile(
    r"(?:19|20)?(?P<digits>[0-9]{12})\s?"
    r"(?:(?P<sign>[+-])(?:(?P<quarters>[0-9]{2})|(?P<hours>[0-9]{2}):?(?P<minutes>[0-5][0-9]))"
    r"|[0-9](?P<smpp>[0-9]{2})(?P<smpp_sign>[+-])|(?P<utc>Z))?"
)
_MAX_ZONE_MINUTES = 14 * 60  # the widest offset in use (UTC+14); a larger one is no zone


def read_stamp(value: str | None) -> tuple[str, datetime] | None:
    """A CIMD2 time as its 12 digits (yymmddhhmmss) and the moment they name, or None when absent or
    malformed: read once, as every MO's 060 is (checked, then read again, it took three parses per MO).

    Blanks around it are dropped, and a 14-digit one's century ("20261206153000"): an SMSC that
    pads the field or writes the year in full still names the SMS by it. Read as no time, an MO
    it delivered again after its acknowledgement was taken for a new one and mailed twice.

    A zone after the 12 digits (`_STAMP`) is read too: an SMSC that adds one to every 060 had every SMS
    end `unreported`, its submit answers and reports making no key. The digits stay the key as written
    (both sides name the SMS by the SMSC's own clock); the moment is moved to UTC by the zone, and read
    as UTC without one (the protocol's time has none). Fewer digits (no seconds) are still no time: with
    an SMSC writing minutes, two SMS to one phone in a minute shared a key."""
    if value is None:
        return None
    match = _STAMP.fullmatch(value.strip())
    if match is None:
        return None
    digits = match["digits"]
    try:
        moment = datetime.strptime(digits, "%y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    if (offset := _zone_minutes(match)) is None:
        return None
    return digits, moment - timedelta(minutes=offset)


def _zone_minutes(match: re.Match[str]) -> int | None:
    """The zone of a `_STAMP` match in minutes east of UTC (0 when none is written), None when out of
    range (then it is no zone but other digits: "+99")."""
    if match["quarters"] is not None:
        sign, minutes = match["sign"], int(match["quarters"]) * 15
    elif match["hours"] is not None:
        sign, minutes = match["sign"], int(match["hours"]) * 60 + int(match["minutes"])
    elif match["smpp"] is not None:
        sign, minutes = match["smpp_sign"], int(match["smpp"]) * 15
    else:
        return 0
    if minutes > _MAX_ZONE_MINUTES:
        return None
    return -minutes if sign == "-" else minutes


def stamp_digits(value: str | None) -> str | None:
    """A CIMD2 time as its 12 digits (`read_stamp`), or None when absent or malformed."""
    stamp = read_stamp(value)
    return None if stamp is None else stamp[0]


def parse_time(value: str | None) -> datetime | None:
    """A CIMD2 time (`read_stamp`) as a UTC moment, or None when absent or malformed."""
    stamp = read_stamp(value)
    return None if stamp is None else stamp[1]


def validity_seconds(code: int) -> int:
    """GSM 03.40 relative validity period code → seconds."""
    if code <= 143:
        return (code + 1) * 300
    if code <= 167:
        return 12 * 3600 + (code - 143) * 1800
    if code <= 196:
        return (code - 166) * 86400
    return (code - 192) * 7 * 86400


def validity_end(value: str, received: datetime) -> datetime | None:
    """When a submit's validity ends, read as an SMSC reads it at `received`: a 050 relative code
    (`validity_seconds`) or a 051 time (`read_stamp`, the SMSC's own time); None for none, -1 (the SMSC's
    default) or one that is neither."""
    if (stamp := read_stamp(value)) is not None:
        return stamp[1]
    value = value.strip()
    if not value.isascii() or not value.isdigit() or not 0 <= int(value) <= 255:
        return None
    return received + timedelta(seconds=validity_seconds(int(value)))


# How far short of a code's period the time left may be and still get that code: the dispatcher
# passes the part's expiry, so a part sent at once has a few seconds less than the configured hours.
VALIDITY_SLACK_SECONDS = 60


def validity_code(seconds: float) -> int:
    """The longest relative validity code that ends no later than `seconds` (the time left until the
    part's expiry) plus `VALIDITY_SLACK_SECONDS`; code 0 (5 min) at least, code 255 at most.

    Rounding down, unlike Kannel: the steps grow to a day and then a week, and rounding up told the
    SMSC "2 days" for a mail whose `Expiry-Date` was 25 h away, so it might deliver 23 h after the
    time its sender was told it would not be. A period a few seconds short of a code is that code
    (48 h stays 48 h, not 24 h). Under 5 min left the SMSC gets 5 min, the shortest period the
    protocol can say; a part that has not gone by its expiry still expires here."""
    best = 0
    for code in range(256):
        if validity_seconds(code) > seconds + VALIDITY_SLACK_SECONDS:
            break
        best = code
    return best
