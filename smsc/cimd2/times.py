"""CIMD2's times and validity periods: the yymmddhhmmss stamps of submits, reports and MO, and the
GSM 03.40 relative validity codes a submit carries (`validity_code` rounds down, unlike Kannel)."""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(moment: datetime) -> str:
    """yymmddhhmmss in UTC (the SMSC's zone is unknown to the protocol; test_cimd2 uses UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%y%m%d%H%M%S")


def read_stamp(value: str | None) -> tuple[str, datetime] | None:
    """A CIMD2 time as its 12 digits (yymmddhhmmss) and the moment they name read as UTC, or None
    when absent or malformed: read once, as every MO's 060 is (checked, then read again, it took
    three parses per MO).

    Blanks around it are dropped, and a 14-digit one's century ("20261206153000"): an SMSC that
    pads the field or writes the year in full still names the SMS by it. Read as no time, an MO
    it delivered again after its acknowledgement was taken for a new one and mailed twice. A zone
    is not read: the protocol's time has none (the SMSC's local time), and a field carrying more
    is no time the gateway can compare."""
    if value is None:
        return None
    value = value.strip()
    if len(value) == 14 and value[:2] in ("19", "20"):
        value = value[2:]
    if len(value) != 12 or not value.isdigit():
        return None
    try:
        moment = datetime.strptime(value, "%y%m%d%H%M%S")
    except ValueError:
        return None
    return value, moment.replace(tzinfo=UTC)


def stamp_digits(value: str | None) -> str | None:
    """A CIMD2 time as its 12 digits (`read_stamp`), or None when absent or malformed."""
    stamp = read_stamp(value)
    return None if stamp is None else stamp[0]


def parse_time(value: str | None) -> datetime | None:
    """A CIMD2 time (`read_stamp`) read as UTC, or None when absent or malformed."""
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
