"""Quiet hours: bulk SMS are held overnight and released when the window opens (SPEC R-2.4).

Pure time arithmetic in the installation's time zone; a window may wrap midnight (21:00-08:00).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: str) -> time:
    m = _HHMM.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a time of day like 21:00")
    return time(int(m.group(1)), int(m.group(2)))


def parse_window(value: str) -> tuple[str, str]:
    """'21:00-08:00' → ('21:00', '08:00'), validated."""
    start, sep, end = value.partition("-")
    if not sep:
        raise ValueError(f"{value!r} is not a window like 21:00-08:00")
    parse_hhmm(start)
    parse_hhmm(end)
    if start.strip() == end.strip():
        raise ValueError("quiet hours must not start and end at the same time")
    return start.strip(), end.strip()


def release_time(now: datetime, start: str | None, end: str | None) -> datetime | None:
    """When a bulk SMS written now may go: None if now is outside the quiet window."""
    if not start or not end:
        return None
    s, e = parse_hhmm(start), parse_hhmm(end)
    t = now.timetz().replace(tzinfo=None)
    if s < e:
        inside = s <= t < e
    else:  # wraps midnight
        inside = t >= s or t < e
    inside = inside or _begun_in_first_pass(now, s, t)
    if not inside or _ended_in_first_pass(now, e, t):
        return None
    release = now.replace(hour=e.hour, minute=e.minute, second=0, microsecond=0)
    if release <= now:
        release += timedelta(days=1)
    return _after_gap(release)


def _ended_in_first_pass(now: datetime, end: time, t: time) -> bool:
    """Whether the window's end already came in the first pass of the hour the clocks repeat.

    On the autumn night (Warsaw: 02:00-03:00 twice) a window ending at 02:30 ended at the first
    02:30; mail written at 02:10 of the second pass is after that end, though its wall time is
    before it, and held it would wait for the second 02:30 as if the window had opened again.
    """
    if now.tzinfo is None or now.fold != 1 or not t < end:
        return False
    first = now.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0, fold=0)
    return first.timestamp() <= now.timestamp()


def _begun_in_first_pass(now: datetime, start: time, t: time) -> bool:
    """Whether the window began in the first pass of the hour the clocks repeat, `now` being in the
    second pass before its start's wall time.

    A window 02:30-06:00 on the autumn night began at the first 02:30; mail written at 02:10 of the
    second pass is 40 real minutes into it, though its wall time is before the start: sent at once,
    it went out inside the window, after mail written at 02:40 of the first pass had been held.
    """
    if now.tzinfo is None or now.fold != 1 or not t < start:
        return False
    first = now.replace(hour=start.hour, minute=start.minute, second=0, microsecond=0, fold=0)
    return first.timestamp() <= now.timestamp()


def _after_gap(wall: datetime) -> datetime:
    """`wall`, or the first instant after the clock change when `wall` falls in a spring-forward gap.

    A window ending at 02:30 on the night the clocks jump from 02:00 to 03:00 ends, for new mail, at
    03:00: that is the first moment `release_time` says "outside". Taken as is, 02:30 is read with
    the offset before the change and lands at 03:30, so mail held overnight would go half an hour
    after mail written later.
    """
    if wall.tzinfo is None:
        return wall
    utc = wall.astimezone(UTC)
    if utc.astimezone(wall.tzinfo).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return wall  # the time exists (the usual case)
    # The change lies between the two readings of the missing time (fold=1 takes the offset after
    # it, fold=0 the one before); transitions fall on whole seconds, so bisect in seconds.
    lo = int(wall.replace(fold=1).timestamp())
    hi = int(wall.replace(fold=0).timestamp())
    lo, hi = min(lo, hi), max(lo, hi)
    after = datetime.fromtimestamp(hi, wall.tzinfo).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, wall.tzinfo).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, wall.tzinfo)
