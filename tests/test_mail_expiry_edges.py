"""A mail's own expiry at its edges.

An `Expiry-Date` (or `Expires:`) just ahead gave less validity than one just past: 10 s past got the
shortest validity (5 min), 3 s ahead got 3 s, an `Expires:` 20 s ahead 20 s. Whatever the sender
wrote, an SMS is valid at least the shortest validity from when it may go.

An `Expiry-Date` in year 0001 was refused (rightly), but the 554 named 2001: Python's mail date parser
reads every year below 100 as two-digit, "0001" too. The refusal names the year as written.

Unit tests on the functions; one real gateway on 127.0.0.1 with the SMPP simulator and a real SMTP
client for each, on an injected clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.smtp import replies
from gateway.smtp.intake import read_mail
from gateway.smtp.mailexpiry import SHORTEST_VALIDITY, expired, shown, valid_until
from gateway.store.accountrecord import Account
from gateway.store.db import Store
from tests.conftest import DOMAIN, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_mail_expiry import Clock, said, validities

NOW = datetime(2026, 12, 4, 15, 0, 0, tzinfo=ZoneInfo("Europe/Warsaw"))
SHORT = SHORTEST_VALIDITY.total_seconds()


@pytest.fixture
def account(tmp_path: Path) -> Account:
    store = Store.open(tmp_path / "db.sqlite")
    try:
        return store.accounts.add_account("acme")
    finally:
        store.close()


def header(name: str, value: str) -> bytes:
    return (
        f"From: anna@acme.example\r\nTo: 601123490@{DOMAIN}\r\n{name}: {value}\r\nSubject: Door\r\n\r\n"
        "Code 4711\r\n"
    ).encode()


def until(account: Account, name: str, at: datetime, held_until: datetime | None = None) -> float | None:
    """The validity `valid_until` gives a mail with `name: at`, in seconds from when its SMS may go."""
    cfg = make_config(Path("/nonexistent"), smsc_port=2775)  # [gateway] validity_hours: 24
    got = valid_until(cfg, account, read_mail(header(name, format_datetime(at))), NOW, held_until)
    return None if got is None else (got - (held_until or NOW)).total_seconds()


@pytest.mark.parametrize(
    ("name", "ahead", "validity"),
    [
        ("Expiry-Date", -10, SHORT),  # past within the clocks' skew: the shortest, as before
        ("Expiry-Date", 3, SHORT),  # was 3 s
        ("Expiry-Date", 299, SHORT),  # was 299 s
        ("Expires", 20, SHORT),  # was 20 s
        ("Expiry-Date", 301, 301),  # longer than the shortest: as written
        ("Expires", 600, 600),
        ("Expiry-Date", 30 * 3600, None),  # beyond the account's day: the account's
    ],
)
def test_a_mail_s_expiry_gives_its_sms_never_less_than_the_shortest_validity(
    account: Account, name: str, ahead: int, validity: float | None
) -> None:
    assert until(account, name, NOW + timedelta(seconds=ahead)) == validity


def test_the_shortest_validity_counts_from_the_end_of_quiet_hours(account: Account) -> None:
    morning = NOW + timedelta(hours=17)
    assert until(account, "Expiry-Date", morning + timedelta(seconds=3), held_until=morning) == SHORT
    # An `Expires:` ahead of the mail but before its SMS may go: it still expires unsent, the sender
    # told by the queue (no 5 min of life after the sender's own end, once quiet hours are over).
    assert until(account, "Expires", NOW + timedelta(hours=1), held_until=morning) == -16 * 3600


async def test_an_expiry_date_seconds_ahead_gives_the_sms_the_shortest_validity(tmp_path: Path) -> None:
    clock = Clock()
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg, clock) as gw:
            at = format_datetime(datetime.fromtimestamp(int(clock()) + 3, UTC))
            assert (await gw.send(mail(f"601123491@{DOMAIN}", "On my way", Expiry_Date=at))).error is None
            await smsc.wait_for(1)
            valid = validities(gw.store.db.conn)
    assert valid["+48601123491"] == pytest.approx(SHORT, abs=1)


def year(value: str) -> int | None:
    when = read_mail(header("Expiry-Date", value)).expiry_date
    return None if when is None else when.year


def test_a_four_digit_year_below_100_is_read_as_written() -> None:
    first = read_mail(header("Expiry-Date", "Mon, 01 Jan 0001 00:00:00 +0000")).expiry_date
    assert first == datetime(1, 1, 1, tzinfo=UTC)
    assert year("Sat, 1 Jan 0099 12:00:00 +0000") == 99
    # Two digits are the mail format's two-digit year (RFC 5322 4.3), as before.
    assert year("Mon, 01 Jan 01 00:00:00 +0000") == 2001
    assert year("Fri, 04 Dec 2026 14:50:00 +0000") == 2026
    # Year 0000 is no date: no reason to refuse the mail, as any other unreadable one.
    assert read_mail(header("Expiry-Date", "Sat, 01 Jan 0000 00:00:00 +0000")).expiry_date is None


def test_the_refusal_of_a_year_1_expiry_names_year_1_in_any_zone() -> None:
    # 0001-01-01 00:00 +0100 is in year 0 in UTC or New York: written in the mail's own zone.
    for zone in ("Europe/Warsaw", "America/New_York", "UTC"):
        now = datetime.now(ZoneInfo(zone))
        for when in (datetime(1, 1, 1, tzinfo=UTC), datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))):
            reply = expired(when, now, None)
            assert reply is not None and "(0001-01-01 " in reply and "2001" not in reply, (zone, reply)
    assert shown(datetime(2026, 12, 4, 14, 0, tzinfo=UTC), NOW) == "2026-12-04 15:00 CET"


async def test_a_mail_expiring_in_year_1_is_refused_naming_year_1(tmp_path: Path) -> None:
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg) as gw:
            msg = mail(f"601123492@{DOMAIN}", "Old", Expiry_Date="Mon, 01 Jan 0001 00:00:00 +0000")
            code, text = said(await gw.send(msg))
            assert gw.states() == []
    assert code == 554, text
    written = shown(datetime(1, 1, 1, tzinfo=UTC), datetime.now(ZoneInfo(cfg.gateway.timezone)))
    assert text == replies.EXPIRED.format(expiry=written, why="past")[4:]
    assert "(0001-01-01 " in text and "2001" not in text, text
    assert smsc.received == []
