"""Quiet hours around the clock changes (acl/quiet.py): the release of held bulk SMS is the first
moment at which new bulk mail is no longer held, also on the night the clocks go forward.

Times are given explicitly (the pure function) or through the daemon's injected clock.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from acl.quiet import release_time
from tests.conftest import DOMAIN, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC

WARSAW = ZoneInfo("Europe/Warsaw")


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


class Clock:
    def __init__(self, when: datetime) -> None:
        self.t = when.timestamp()

    def __call__(self) -> float:
        return self.t


def test_a_window_ending_in_the_spring_forward_gap_releases_when_the_clocks_have_jumped() -> None:
    # 2026-03-29 in Warsaw: 02:00 CET is followed by 03:00 CEST, so 02:30 does not exist. Mail
    # written at 03:00 is outside the 22:00-02:30 window; mail held overnight goes then too, not
    # at 03:30 (02:30 read with the winter offset).
    jump = datetime(2026, 3, 29, 3, 0, tzinfo=WARSAW)
    for written in (datetime(2026, 3, 28, 23, 0, tzinfo=WARSAW), datetime(2026, 3, 29, 1, 59, tzinfo=WARSAW)):
        release = release_time(written, "22:00", "02:30")
        assert release is not None
        assert (release.timestamp(), release.hour, release.minute) == (jump.timestamp(), 3, 0)
    assert release_time(jump, "22:00", "02:30") is None
    just_before = datetime.fromtimestamp(jump.timestamp() - 1, WARSAW)
    assert release_time(just_before, "22:00", "02:30") is not None


def test_release_times_that_exist_are_unchanged() -> None:
    # The nights before and after, and the autumn night where 02:30 comes twice (the first counts).
    assert release_time(datetime(2026, 3, 27, 23, 0, tzinfo=WARSAW), "22:00", "02:30") == datetime(
        2026, 3, 28, 2, 30, tzinfo=WARSAW
    )
    assert release_time(datetime(2026, 3, 29, 23, 0, tzinfo=WARSAW), "22:00", "02:30") == datetime(
        2026, 3, 30, 2, 30, tzinfo=WARSAW
    )
    autumn = release_time(datetime(2026, 10, 24, 23, 0, tzinfo=WARSAW), "22:00", "02:30")
    assert (
        autumn is not None
        and autumn.timestamp() == datetime(2026, 10, 25, 0, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    )


def test_a_whole_skipped_day_releases_at_the_first_moment_after_it() -> None:
    # Samoa skipped 2011-12-30 entirely: an 08:00 release that day becomes midnight of the 31st.
    apia = ZoneInfo("Pacific/Apia")
    release = release_time(datetime(2011, 12, 29, 22, 0, tzinfo=apia), "21:00", "08:00")
    assert release is not None
    assert release.timestamp() == datetime(2011, 12, 31, 0, 0, tzinfo=apia).timestamp()


async def test_mail_held_overnight_goes_when_new_mail_would_on_the_spring_forward_night(
    tmp_path: Path,
) -> None:
    # The daemon with its clock at 23:00 on 2026-03-28, then at 03:00 CEST: the newsletter held
    # overnight and one written at 03:00 both go at 03:00, not the first half an hour later.
    clock = Clock(datetime(2026, 3, 28, 23, 0, tzinfo=WARSAW))
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port), clock) as gw:
        await gw.store.write(
            lambda: gw.store.accounts.update_account("acme", quiet_start="22:00", quiet_end="02:30")
        )
        await gw.send(mail(to("601123456"), "Newsletter", Precedence="bulk"))
        await gw.send(mail(to("601123457"), "Marker"))
        await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received))
        assert [s.text for s in smsc.received] == ["Marker"]
        clock.t = datetime(2026, 3, 29, 3, 0, tzinfo=WARSAW).timestamp()
        await gw.send(mail(to("601123458"), "Written at three", Precedence="bulk"))
        gw.daemon.dispatcher.wake()
        await smsc.wait_for(3)
        assert sorted(s.text for s in smsc.received) == ["Marker", "Newsletter", "Written at three"]


def test_a_window_ending_in_the_repeated_autumn_hour_does_not_open_again_for_its_second_pass() -> None:
    # 2026-10-25 in Warsaw: 03:00 CEST is followed by 02:00 CET, so 02:00-03:00 comes twice. The
    # 22:00-02:30 window ended at the first 02:30 (00:30 UTC); at 02:10 of the second pass (01:10 UTC)
    # bulk mail goes at once instead of waiting for the second 02:30.
    second_pass = datetime.fromtimestamp(
        datetime(2026, 10, 25, 1, 10, tzinfo=ZoneInfo("UTC")).timestamp(), WARSAW
    )
    assert (second_pass.hour, second_pass.minute, second_pass.fold) == (2, 10, 1)
    assert release_time(second_pass, "22:00", "02:30") is None
    assert release_time(second_pass, "01:00", "02:30") is None
    # In the first pass the window still holds until the first 02:30; a window ending after the
    # repeated hour holds through both passes.
    first_pass = datetime.fromtimestamp(
        datetime(2026, 10, 25, 0, 10, tzinfo=ZoneInfo("UTC")).timestamp(), WARSAW
    )
    release = release_time(first_pass, "22:00", "02:30")
    assert (
        release is not None
        and release.timestamp() == datetime(2026, 10, 25, 0, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    )
    release = release_time(second_pass, "22:00", "04:00")
    assert (
        release is not None and release.timestamp() == datetime(2026, 10, 25, 4, 0, tzinfo=WARSAW).timestamp()
    )
    # The evening part of a window on the same day is unchanged.
    assert release_time(datetime(2026, 10, 25, 23, 0, tzinfo=WARSAW), "22:00", "02:30") is not None


def test_a_window_starting_in_the_repeated_autumn_hour_holds_through_the_rest_of_its_second_pass() -> None:
    # 2027-10-31 in Warsaw: 02:30-06:00 began at the first 02:30 (00:30 UTC). At 02:10 of the
    # second pass (01:10 UTC), 30 real minutes after bulk mail at 02:40 CEST was held, the window is
    # still open: held until 06:00 like that mail, not sent because 02:10 reads before 02:30.
    utc = ZoneInfo("UTC")
    second_pass = datetime.fromtimestamp(datetime(2027, 10, 31, 1, 10, tzinfo=utc).timestamp(), WARSAW)
    assert (second_pass.hour, second_pass.minute, second_pass.fold) == (2, 10, 1)
    six = datetime(2027, 10, 31, 6, 0, tzinfo=WARSAW).timestamp()
    release = release_time(second_pass, "02:30", "06:00")
    assert release is not None and release.timestamp() == six
    # Every minute from the first 02:30 to 06:00 is inside, and the release is always 06:00.
    midnight_utc = datetime(2027, 10, 31, 0, 0, tzinfo=utc).timestamp()
    for minute in range(30, 300):  # 00:30 to 04:59 UTC
        at = datetime.fromtimestamp(midnight_utc + 60 * minute, WARSAW)
        release = release_time(at, "02:30", "06:00")
        assert release is not None and release.timestamp() == six, at
    # Before the first 02:30 the window has not begun; a window wrapping midnight that began in the
    # first pass holds until its end the next day.
    assert release_time(datetime(2027, 10, 31, 2, 10, tzinfo=WARSAW), "02:30", "06:00") is None
    release = release_time(second_pass, "02:30", "01:00")
    assert (
        release is not None and release.timestamp() == datetime(2027, 11, 1, 1, 0, tzinfo=WARSAW).timestamp()
    )
    # A window both begun and ended in the first pass does not open again for the second.
    assert release_time(second_pass, "02:15", "02:45") is None


async def test_bulk_mail_in_the_second_pass_of_a_window_begun_in_the_first_is_held(tmp_path: Path) -> None:
    # The daemon: bulk mail at 02:40 CEST is held; 30 real minutes later, at 02:10 CET, another is
    # held too, both until 06:00; a marker mail without Precedence: bulk goes at once.
    utc = ZoneInfo("UTC")
    clock = Clock(datetime(2027, 10, 31, 0, 40, tzinfo=utc))  # 02:40 CEST, the first pass
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, timezone="Europe/Warsaw")
        async with running_gateway(cfg, clock) as gw:
            await gw.store.write(
                lambda: gw.store.accounts.update_account("acme", quiet_start="02:30", quiet_end="06:00")
            )
            await gw.send(mail(to("601123456"), "Bulk at 02:40 CEST", Precedence="bulk"))
            clock.t = datetime(2027, 10, 31, 1, 10, tzinfo=utc).timestamp()  # 02:10 CET
            await gw.send(mail(to("601123457"), "Bulk at 02:10 CET", Precedence="bulk"))
            await gw.send(mail(to("601123458"), "Marker"))
            gw.daemon.dispatcher.wake()
            await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received))
            assert [s.text for s in smsc.received] == ["Marker"]
            held = gw.store.db.conn.execute(
                "SELECT DISTINCT next_attempt_at FROM parts WHERE state = 'queued'"
            ).fetchall()
            assert held == [(datetime(2027, 10, 31, 6, 0, tzinfo=WARSAW).timestamp(),)]
