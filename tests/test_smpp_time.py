"""`smsc.smpp.pdu.smpp_time` puts the validity together from a datetime's fields instead of calling
strftime: it must give strftime's text for every moment and zone a submit may carry."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from smsc.smpp.pdu import smpp_time


def reference(when: datetime) -> str:
    """What the submit's validity_period was before: strftime of the moment in UTC."""
    return when.astimezone(UTC).strftime("%y%m%d%H%M%S") + "000+"


ZONES = [
    UTC,
    ZoneInfo("UTC"),  # UTC, but not the `UTC` object: converted
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-9, minutes=-30)),
    timezone(timedelta(hours=14)),
    ZoneInfo("Europe/Warsaw"),
    ZoneInfo("America/St_Johns"),
]


def test_crafted_moments_read_as_strftime_reads_them() -> None:
    moments = [
        datetime(2026, 12, 7, 10, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),  # the fraction is dropped, not rounded
        datetime(2000, 1, 1, 0, 0, 0, tzinfo=UTC),  # year 00
        datetime(2099, 2, 28, 9, 5, 7, tzinfo=UTC),
        datetime(2024, 2, 29, 12, 30, 1, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 0, 0, tzinfo=UTC),
        datetime(2105, 6, 1, 1, 1, 1, tzinfo=UTC),  # past 2099: the year's last two digits, as %y
        datetime(1, 1, 1, 14, 0, 0, tzinfo=UTC),  # year 1: "01"
        datetime(2026, 3, 29, 0, 30, tzinfo=ZoneInfo("Europe/Warsaw")),  # the night the clock moves on
        datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Warsaw")),  # the hour that repeats
        datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),  # a day and a year back in UTC
        datetime(2026, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),  # a year on
    ]
    for when in moments:
        assert smpp_time(when) == reference(when), when


def test_random_moments_in_every_zone() -> None:
    rng = random.Random(20261206)
    start = datetime(1990, 1, 1, tzinfo=UTC).timestamp()
    end = datetime(2130, 1, 1, tzinfo=UTC).timestamp()
    for _ in range(3_000):
        stamp = rng.uniform(start, end)
        for zone in ZONES:
            when = datetime.fromtimestamp(stamp, zone)
            assert smpp_time(when) == reference(when), when


def test_the_dispatchers_validity_reads_as_before() -> None:
    """`gateway.outbound` makes it with `datetime.fromtimestamp(expires_at, UTC)`, fractions included."""
    for stamp in (1_796_000_000.0, 1_796_000_000.999_999, 1_796_000_059.5, 4_102_444_799.25):
        when = datetime.fromtimestamp(stamp, UTC)
        assert smpp_time(when) == reference(when)
