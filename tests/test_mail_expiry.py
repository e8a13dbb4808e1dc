"""Outlook's "Expires after" (`Expiry-Date:`, RFC 4021; also `Expires:`): the SMS of such a mail is not
delivered after that time. It is the SMS's validity where it is shorter than the account's, which the
SMSC gets as the submit_sm's validity_period and the queue expires it by; a date already past or no
date at all leaves the account's validity, and the mail is sent as any other.

A real gateway on 127.0.0.1 with an SMPP simulator, mail through a real SMTP client, an injected clock."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway import accountrules, housekeeping
from smsc.smpp.pdu import smpp_time
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC

HOUR = 3600.0
DAY = 24 * HOUR
CET = timezone(timedelta(hours=1))  # as Outlook in Warsaw writes it: "+0100"


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


def expiry_date(at: float) -> str:
    """`Expiry-Date: Thu, 3 Dec 2026 19:00:00 +0100`: whole seconds, the sender's own zone."""
    return format_datetime(datetime.fromtimestamp(int(at), CET))


class Clock:
    """The daemon's clock: the real one moved by `skew`, so that links and timers still run."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.time() + self.skew


def validities(db: sqlite3.Connection) -> dict[str, float]:
    """Each SMS's validity as the queue keeps it, by its number: expiry less acceptance."""
    rows = db.execute(
        "SELECT m.recipient, p.expires_at - m.created_at FROM parts p JOIN messages m ON m.id = p.message_id"
    )
    return dict(rows.fetchall())


async def test_expiry_date_two_hours_ahead_is_the_validity_the_smsc_gets(tmp_path: Path) -> None:
    sink_port = free_port()
    clock = Clock()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg, clock) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", confirm=1))
            at = int(clock()) + 2 * 3600
            outlook = mail(to("601123401"), "Meeting at 17:00 moved to room 4", Expiry_Date=expiry_date(at))
            assert (await gw.send(outlook)).error is None
            # `Expires:` is read too; a date later than the account's 24 h, one past, and one that is
            # no date leave the account's validity, and none of them is refused.
            other = mail(to("601123402"), "Call me back", Expires=expiry_date(int(clock()) + 3 * 3600))
            later = mail(to("601123403"), "Next week", Expiry_Date=expiry_date(int(clock()) + 30 * 3600))
            past = mail(to("601123404"), "Late", Expiry_Date=expiry_date(int(clock()) - 60))
            junk = mail(to("601123405"), "Odd client", Expiry_Date="tomorrow at five")
            plain = mail(to("601123406"), "No expiry at all")
            for m in (other, later, past, junk, plain):
                assert (await gw.send(m)).error is None
            await smsc.wait_for(6, timeout=20)
            db = gw.store.db.conn
            expires_at = db.execute("SELECT expires_at FROM parts WHERE destination = '+48601123401'")
            assert expires_at.fetchone()[0] == pytest.approx(at, abs=1e-3)
            valid = validities(db)
            assert valid["+48601123401"] == pytest.approx(2 * HOUR, abs=5)
            assert valid["+48601123402"] == pytest.approx(3 * HOUR, abs=5)
            for number in ("+48601123403", "+48601123404", "+48601123405", "+48601123406"):
                assert valid[number] == pytest.approx(DAY, abs=1e-3), number
            await sink.wait(6)
    got = {s.destination.lstrip("+"): s.validity for s in smsc.received}
    # The submit_sm the SMSC got: absolute, the header's own time in UTC.
    assert got["48601123401"] == smpp_time(datetime.fromtimestamp(at, UTC))
    sent_at = datetime.strptime(got["48601123401"][:12], "%y%m%d%H%M%S").replace(tzinfo=UTC)
    assert (sent_at.timestamp() - clock()) == pytest.approx(2 * HOUR, abs=60)
    confirmations = [
        message_from_bytes(raw, policy=policy.default) for _, _, raw in sink.messages if b"Meeting" in raw
    ]
    assert len(confirmations) == 1
    text = confirmations[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    until = datetime.fromtimestamp(at, ZoneInfo(cfg.gateway.timezone))
    assert f"valid until {until:%Y-%m-%d %H:%M %Z}" in text, text
    # The mail expiring sooner than the account's validity is told so; the others say nothing of it.
    told = [
        message_from_bytes(raw, policy=policy.default)["Subject"]
        for _, _, raw in sink.messages
        if b"valid until" in raw
    ]
    assert sorted(told) == ["SMS accepted: Call me back", "SMS accepted: Meeting at 17:00 moved to room 4"]


async def test_the_queue_expires_the_sms_at_the_mail_s_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No SMSC answers: the SMS waits, and ends at the mail's expiry, two hours on the injected
    # clock, not at the account's 24 h; its sender gets the bounce saying so.
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 0.05)
    sink_port = free_port()
    clock = Clock()
    async with smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=free_port(), relay_port=sink_port)
        async with running_gateway(cfg, clock) as gw:
            at = int(clock()) + 2 * 3600
            msg = mail(to("601123411"), "Gate code for today: 4711", Expiry_Date=expiry_date(at))
            assert (await gw.send(msg)).error is None
            assert gw.states() == ["queued"]
            clock.skew = at - time.time() - 5  # five seconds before the mail's expiry
            await asyncio.sleep(0.5)  # ten rounds of the expiry
            assert gw.states() == ["queued"]
            clock.skew = at - time.time() + 1
            await gw.until(lambda: gw.states() == ["expired"])
            await sink.wait(1)
    assert b"expired" in sink.messages[0][2]


def test_a_mail_that_expires_before_quiet_hours_end_gets_no_validity_left() -> None:
    # Held for quiet hours until 08:00, a mail expiring at 07:00 must not go at 08:00: its SMS
    # expires unsent (and its sender is told), where the account's 24 h would have sent it.
    cfg = make_config(Path("/nonexistent"), smsc_port=2775)  # [gateway] validity_hours: 24
    release = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    expires = release - timedelta(hours=1)
    assert accountrules.validity_seconds(cfg, None, expires=expires, start=release) == 0
    assert (
        accountrules.validity_seconds(cfg, None, expires=release + timedelta(hours=2), start=release)
        == 2 * HOUR
    )
    assert accountrules.validity_seconds(cfg, None, expires=release + timedelta(days=3), start=release) == DAY
