"""The validity a CIMD2 SMSC is told never outlasts the part's expiry (the mail's `Expiry-Date`).

CIMD2 sends a relative GSM 03.40 code whose steps grow to a day and then a week. Rounded up, as
Kannel does, a mail expiring in 25 h went out as "2 days": the SMSC could deliver 23 h after the time
the sender's confirmation said the SMS "is not delivered after". A link logged in to the CIMD2
simulator over TCP; the code the simulator received is read back as seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smsc.cimd2.times import VALIDITY_SLACK_SECONDS, validity_seconds
from tests.test_cimd2_link import running, sms


@pytest.mark.parametrize(
    ("left", "told"),
    [
        (timedelta(minutes=2), timedelta(minutes=5)),  # the shortest code; the gateway's own expiry ends it
        (timedelta(minutes=7), timedelta(minutes=5)),
        (timedelta(hours=13, minutes=10), timedelta(hours=13)),
        (timedelta(hours=25), timedelta(hours=24)),
        (timedelta(days=9, hours=23), timedelta(days=9)),
        (timedelta(weeks=6, days=6), timedelta(weeks=6)),
    ],
)
async def test_the_smsc_is_told_the_longest_validity_that_ends_by_the_part_expiry(
    tmp_path: Path, left: timedelta, told: timedelta
) -> None:
    async with running(tmp_path) as r:
        await r.link.submit(sms(validity=datetime.now(UTC) + left))
        [got] = r.server.received
        assert timedelta(seconds=validity_seconds(int(got.validity))) == told


@pytest.mark.parametrize("hours", [1, 12, 24, 48, 72, 168])
async def test_a_part_sent_at_once_keeps_its_whole_configured_validity(tmp_path: Path, hours: int) -> None:
    # The dispatcher passes the part's expiry, a few seconds short of the configured hours by the time
    # the part is sent: it still gets those hours, not a step less (48 h must not become 24 h).
    async with running(tmp_path) as r:
        await r.link.submit(sms(validity=datetime.now(UTC) + timedelta(hours=hours, seconds=-3)))
        [got] = r.server.received
        assert validity_seconds(int(got.validity)) == hours * 3600


async def test_never_more_than_the_slack_past_the_expiry(tmp_path: Path) -> None:
    # Just short of the slack past a step the step is given; past it, the step below.
    async with running(tmp_path) as r:
        for part_id, short in enumerate((VALIDITY_SLACK_SECONDS - 5, VALIDITY_SLACK_SECONDS + 5), 1):
            until = datetime.now(UTC) + timedelta(days=3, seconds=-short)
            await r.link.submit(sms(part_id=part_id, validity=until))
        assert [validity_seconds(int(p.validity)) for p in r.server.received] == [3 * 86400, 2 * 86400]


def test_the_smtp_sides_shortest_validity_is_cimd2s_first_code() -> None:
    # The SMTP side writes CIMD2's shortest relative validity down rather than import a link driver:
    # a mail a few minutes past its Expiry-Date gets it, and no SMSC may be told less.
    from gateway import accountrules
    from smsc.cimd2.times import validity_seconds

    assert accountrules.SHORTEST_VALIDITY_SECONDS == validity_seconds(0)
