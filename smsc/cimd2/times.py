"""CIMD2's times and validity periods: the yymmddhhmmss stamps of submits, reports and MO, and the
GSM 03.40 relative validity codes a submit carries (`validity_code` rounds down, unlike Kannel)."""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(moment: datetime) -> str:
    """yymmddhhmmss in UTC (the SMSC's zone is unknown to the protocol; test_cimd2 uses UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%y%m%d%H%M%S")


def parse_time(value: str | None) -> datetime | None:
    """A 12-digit CIMD2 time read as UTC, or None when absent or malformed."""
    if not value or len(value) != 12 or not value.isdigit():
        return None
    try:
        return datetime.strptime(value, "%y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


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
