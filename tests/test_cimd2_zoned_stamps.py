"""A CIMD2 060 an SMSC writes with a zone after its 12 digits still names the SMS (protocols.md 1.9).

Some SMSCs add their time zone to every stamp: in quarter hours ("+04", GSM 03.40's unit), in hours
and minutes ("+0100", "+01:00"), or SMPP's way ("004+": tenths, quarter hours, sign). Read as no
time, every submit answer made no key and every report matched none: each SMS of the link ended
`unreported` and a failed one was never bounced. The key is the 12 digits, on both sides, whether
the zone is on one side or both; a stamp without seconds is still none (`test_cimd2_minute_stamps`).

Against the real daemon (SMTP in, the relay a real aiosmtpd sink) and a scripted SMSC over TCP.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from smsc.cimd2.times import read_stamp
from tests.conftest import DOMAIN, mail
from tests.test_cimd2_minute_stamps import keys
from tests.test_cimd2_report_keys import Submit, bounce_text, gateway_and_smsc


@pytest.mark.parametrize(
    ("answered", "reported"),
    [
        ("+04", "+04"),
        ("-08", "-08"),
        ("+0100", "+0100"),
        ("+01:00", "+01:00"),
        ("004+", "004+"),
        ("+04", ""),  # the zone on the submit answer alone
        ("", "+04"),  # on the report alone
    ],
)
async def test_a_060_with_a_zone_still_matches_its_report(
    tmp_path: Path, answered: str, reported: str
) -> None:
    async with gateway_and_smsc(tmp_path) as (gw, smsc, sink):
        original = smsc.answer

        def zoned(submit: Submit) -> None:
            stamp = submit.stamp
            submit.stamp = stamp + answered
            original(submit)
            submit.stamp = stamp + reported  # the report's 060 (and its 063)

        smsc.answer = zoned  # type: ignore[method-assign]
        await gw.send(mail(f"601557021@{DOMAIN}", "Zoned"))
        (submit,) = await smsc.until_submits(1)
        await gw.until(lambda: gw.states() == ["submitted"] and keys(gw)[0] is not None, timeout=10)
        assert keys(gw)[0] == f"{submit.stamp[:12]}:48601557021"
        await smsc.report(submit, "601557021", 3, 1)
        await gw.until(lambda: gw.states() == ["failed"], timeout=10)
        await sink.wait(1)
        assert "Zoned" in bounce_text(sink)


def test_a_zone_moves_the_moment_not_the_digits() -> None:
    local = datetime(2026, 12, 7, 3, 21, 2, tzinfo=UTC)
    for zone, minutes in (("", 0), ("Z", 0), ("+04", 60), ("-08", -120), ("+0130", 90), ("-05:30", -330),
                          ("001+", 15), ("010-", -150), (" +04", 60)):  # fmt: skip
        stamp = read_stamp("261207032102" + zone)
        assert stamp is not None, zone
        assert stamp[0] == "261207032102"
        assert (local - stamp[1]).total_seconds() == minutes * 60, zone
    # Not a zone: out of range, half a field, other letters; and no seconds before a zone.
    for value in ("261207032102+99", "261207032102+1500", "261207032102+4", "261207032102+04x",
                  "261207032102004", "261207032102UTC", "2612070321+04", "2612070321004+"):  # fmt: skip
        assert read_stamp(value) is None, value
