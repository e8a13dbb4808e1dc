"""Quiet hours: bulk SMS are held overnight and released when the window opens (SPEC R-2.4).

Pure time arithmetic in the installation's time zone; a window may wrap midnight (21:00-08:00).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

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
    if not inside:
        return None
    release = now.replace(hour=e.hour, minute=e.minute, second=0, microsecond=0)
    if release <= now:
        release += timedelta(days=1)
    return release
