"""A mail's Expiry-Date around a DST change: the 5 minutes allowed for the clocks' skew are 5 real
minutes. Python adds to a datetime in its zone's wall-clock time, so in the first minutes after a
change "5 minutes before 03:02 CEST" was 02:57 CET, an hour out: in spring a mail expiring 28
minutes ahead was refused as past, in autumn one expired 51 minutes before was sent.

Real peers: an SMTP client, the daemon's listener, the test SMSC over TCP, the SQLite file; the
daemon's wall clock is injected (real time moved to the night of the change).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.smtp.mailexpiry import expired
from tests.conftest import DOMAIN, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC

WARSAW = ZoneInfo("Europe/Warsaw")


class Clock:
    """Real time moved to `at`: the daemon's timers still run."""

    def __init__(self, at: datetime) -> None:
        self.offset = at.timestamp() - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset


async def sent_when(tmp_path: Path, at: datetime, expiry: str) -> tuple[str | None, float | None]:
    """The refusal, or the SMS's expiry (a timestamp) at the SMSC, of a mail arriving `at`."""
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, timezone="Europe/Warsaw")
        async with running_gateway(cfg, Clock(at)) as gw:
            res = await gw.send(mail(f"601123456@{DOMAIN}", "Meeting at 03:30", **{"Expiry-Date": expiry}))
            if res.error is not None:
                return str(res.error), None
            await smsc.wait_for(1)
            row = gw.store.db.conn.execute("SELECT expires_at FROM messages").fetchone()
            return None, row[0]


async def test_spring_a_mail_expiring_28_minutes_ahead_goes_and_keeps_its_expiry(tmp_path: Path) -> None:
    at = datetime(2026, 3, 29, 3, 2, tzinfo=WARSAW)  # two minutes after 02:00 CET became 03:00 CEST
    refused, expires_at = await sent_when(tmp_path, at, "Sun, 29 Mar 2026 03:30:00 +0200")
    assert refused is None
    assert expires_at == datetime(2026, 3, 29, 3, 30, tzinfo=WARSAW).timestamp()


async def test_autumn_a_mail_expired_51_minutes_before_is_refused(tmp_path: Path) -> None:
    at = datetime(2026, 10, 25, 2, 1, tzinfo=UTC).astimezone(WARSAW)  # 03:01 CET, the hour after the repeat
    refused, _ = await sent_when(tmp_path, at, "Sun, 25 Oct 2026 02:10:00 +0100")
    assert refused is not None and "554" in refused and "past" in refused


def test_quiet_hours_ending_just_after_the_change_count_real_minutes() -> None:
    # Bulk mail held until 03:00 CEST (quiet hours 22:00-03:00) on the spring night: an expiry 20
    # minutes after the release is not past; one 10 minutes before it is, whatever the wall clock did.
    now = datetime(2026, 3, 28, 23, 0, tzinfo=WARSAW)
    release = datetime(2026, 3, 29, 3, 0, tzinfo=WARSAW)
    assert expired(datetime(2026, 3, 29, 3, 20, tzinfo=WARSAW), now, release) is None
    assert expired(datetime(2026, 3, 29, 0, 56, tzinfo=UTC), now, release) is None  # 4 min before: skew
    assert expired(datetime(2026, 3, 29, 0, 50, tzinfo=UTC), now, release) is not None  # 10 min before
    autumn_now = datetime(2026, 10, 24, 23, 0, tzinfo=WARSAW)
    autumn_release = datetime(2026, 10, 25, 2, 1, tzinfo=UTC).astimezone(WARSAW)  # 03:01 CET
    assert expired(datetime(2026, 10, 25, 1, 10, tzinfo=UTC), autumn_now, autumn_release) is not None
