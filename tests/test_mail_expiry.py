"""Outlook's "Expires after" (`Expiry-Date:`, RFC 4021; also `Expires:`): the SMS of such a mail is not
delivered after that time. It is the SMS's validity where it is shorter than the account's, which the
SMSC gets as the submit_sm's validity_period and the queue expires it by; no date at all (or one that
is no date) leaves the account's validity, and the mail is sent as any other. An `Expiry-Date` more
than five minutes past by the time the SMS could go refuses the mail (but for a retry of one taken
already); one less is the clocks disagreeing. A past `Expires:` (PHP's nocache date) is ignored.

A real gateway on 127.0.0.1 with an SMPP simulator, mail through a real SMTP client, an injected clock.
Retries past the expiry have a module of their own (test_mail_expiry_retries.py)."""

from __future__ import annotations

import asyncio
import smtplib
import sqlite3
import time
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway import accountrules, housekeeping
from gateway.smtp import replies
from smsc.smpp.pdu import read_smpp_time
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, SmtpResult, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_submission import PASSWORD, secure, submission_config, with_password

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
            # `Expires:` is read too; a date later than the account's 24 h and one that is no date leave
            # the account's validity; one a minute past (within the clocks' skew) gets 5 min.
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
            assert valid["+48601123404"] == pytest.approx(5 * 60, abs=1)
            for number in ("+48601123403", "+48601123405", "+48601123406"):
                assert valid[number] == pytest.approx(DAY, abs=1e-3), number
            await sink.wait(6)
    got = {s.destination.lstrip("+"): s.validity for s in smsc.received}
    # The submit_sm the SMSC got: relative, what was left of the header's own time when it went.
    assert got["48601123401"].endswith("000R")
    assert relative_seconds(got["48601123401"]) == pytest.approx(2 * HOUR, abs=60)
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
    assert sorted(told) == [
        "SMS accepted: Call me back",
        "SMS accepted: Late",
        "SMS accepted: Meeting at 17:00 moved to room 4",
    ]


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
    bounce = message_from_bytes(sink.messages[0][2], policy=policy.default)
    human = bounce.get_payload()[0]  # the part a person reads, first in the report
    assert "expired" in human.get_content()  # the gateway's own verdict, in words: no Diagnostic-Code
    assert b"Status: 5.4.7" in sink.messages[0][2]


def test_a_mail_that_expires_before_quiet_hours_end_gets_no_validity_left() -> None:
    # Held for quiet hours until 08:00, a mail expiring at 07:00 must not go at 08:00: no validity is
    # left, where the account's 24 h would have sent it (a mail reaching the gateway so is refused).
    cfg = make_config(Path("/nonexistent"), smsc_port=2775)  # [gateway] validity_hours: 24
    release = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    expires = release - timedelta(hours=1)
    assert accountrules.validity_seconds(cfg, None, expires=expires, start=release) == 0
    assert (
        accountrules.validity_seconds(cfg, None, expires=release + timedelta(hours=2), start=release)
        == 2 * HOUR
    )
    assert accountrules.validity_seconds(cfg, None, expires=release + timedelta(days=3), start=release) == DAY


# A mail whose expiry has passed when it comes (held by its sender's server through an outage, or sent
# late from an Outbox) is refused at the end of DATA with a permanent 554 5.4.7, RFC 3463's "delivery
# time expired": the sender's server bounces it to them, and no phone rings about a meeting that is over.


def said(res: SmtpResult) -> tuple[int | None, str]:
    """The refusal's code and text as the client read it (DATA's reply: SMTPDataError)."""
    err = res.error
    raw = getattr(err, "smtp_error", b"")
    return getattr(err, "smtp_code", None), raw.decode() if isinstance(raw, bytes) else str(raw)


def relative_seconds(validity: str) -> float:
    """An SMPP relative validity (`YYMMDDhhmmss000R`) in seconds."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = read_smpp_time(validity, start) if validity.endswith("R") else None
    assert end is not None, validity
    return (end - start).total_seconds()


def part_expiry(db: sqlite3.Connection, number: str) -> float:
    return float(db.execute("SELECT expires_at FROM parts WHERE destination = ?", (number,)).fetchone()[0])


def submitted(port: int, tls: tuple[Path, Path], msg: EmailMessage) -> SmtpResult:
    """As Outlook sends it: the submission port, STARTTLS, AUTH."""
    with secure(port, tls) as client:
        client.login(STAFF, PASSWORD)
        try:
            client.send_message(msg, STAFF, [str(msg["To"])])
        except smtplib.SMTPException as exc:
            return SmtpResult(error=exc)
    return SmtpResult()


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("port", ["relay", "submission"])
async def test_a_mail_whose_expiry_has_passed_is_refused_and_no_sms_is_sent(
    tmp_path: Path, tls_pair: tuple[Path, Path], port: str
) -> None:
    clock = Clock()
    clock.skew = 3 * HOUR  # the daemon's clock, not the machine's, says what has passed
    async with HappySMSC() as smsc:
        cfg = submission_config(tmp_path, smsc.port, tls_pair)
        async with running_gateway(cfg, clock) as gw:
            await with_password(gw)
            at = int(clock()) - HOUR  # an hour before it came; two hours ahead of the machine's clock
            late = mail(to("601123421"), "Meeting at 10:00 moved to room 4", Expiry_Date=expiry_date(at))
            if port == "relay":
                res = await gw.send(late)
            else:
                res = await asyncio.to_thread(submitted, gw.daemon.submission_port, tls_pair, late)
            code, text = said(res)
            until = datetime.fromtimestamp(at, ZoneInfo(cfg.gateway.timezone))
            assert code == 554, text
            assert text == replies.EXPIRED.format(expiry=f"{until:%Y-%m-%d %H:%M %Z}", why="past")[4:]
            assert text.startswith("5.4.7 ") and "no SMS was sent" in text and text.isascii()
            # Nothing recorded or queued; the next mail is the SMSC's first.
            db = gw.store.db.conn
            assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
            assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
            assert (await gw.send(mail(to("601123423"), "Marker"))).error is None
            await smsc.wait_for(1)
            await asyncio.sleep(0.3)
    assert [s.text for s in smsc.received] == ["Marker"]


async def test_machine_mail_recorded_unsent_is_not_refused_for_its_past_expiry(tmp_path: Path) -> None:
    # an automatic mail is recorded and never sent; its expiry changes nothing of that (a
    # refusal would bounce to a daemon's mailbox that no one reads).
    clock = Clock()
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg, clock) as gw:
            cron = mail(
                to("601123431"),
                "Backup finished",
                Expiry_Date=expiry_date(int(clock()) - HOUR),
                Auto_Submitted="auto-generated",
            )
            res = await gw.send(cron)
            assert res.error is None and not res.refused
            db = gw.store.db.conn
            assert db.execute("SELECT COUNT(*) FROM emails WHERE automatic IS NOT NULL").fetchone()[0] == 1
            assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


async def test_an_expiry_a_few_minutes_past_is_the_clocks_and_the_sms_goes_with_the_shortest_validity(
    tmp_path: Path,
) -> None:
    clock = Clock()
    clock.skew = -2 * DAY
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg, clock) as gw:
            # Two minutes past on the daemon's clock: the sender's clock may be ahead of ours. Its SMS
            # goes, valid for the shortest period an SMSC can be told, not the account's whole day.
            skewed = mail(to("601123441"), "On my way", Expiry_Date=expiry_date(int(clock()) - 2 * 60))
            assert (await gw.send(skewed)).error is None
            # Ten minutes ahead: as before, valid for those ten minutes.
            soon = mail(to("601123442"), "Door code 4711", Expiry_Date=expiry_date(int(clock()) + 10 * 60))
            assert (await gw.send(soon)).error is None
            await smsc.wait_for(2)
            valid = validities(gw.store.db.conn)
            assert valid["+48601123441"] == pytest.approx(5 * 60, abs=1)
            assert valid["+48601123442"] == pytest.approx(10 * 60, abs=2)
            ends, sent = part_expiry(gw.store.db.conn, "+48601123441"), clock()
    got = {s.destination.lstrip("+"): s.validity for s in smsc.received}
    # Relative, 5 min from when the SMSC takes it: as absolute, the end on the daemon's clock (2 days
    # behind) told an SMSC on the right time that the SMS had expired 2 days before.
    assert relative_seconds(got["48601123441"]) == pytest.approx(ends - sent, abs=5)
    assert relative_seconds(got["48601123441"]) == pytest.approx(5 * 60, abs=5)


async def test_a_mail_held_for_quiet_hours_past_its_expiry_is_refused(tmp_path: Path) -> None:
    # Written at 22:00 to a bulk account quiet from 21:00 to 08:00: its SMS may go at 08:00. Expiring
    # at 07:00 it is refused (it used to be queued to expire unsent at 08:00); at 09:00 it is held,
    # valid for the hour between.
    tz = ZoneInfo("Europe/Warsaw")
    evening = datetime.now(tz).replace(hour=22, minute=0, second=0, microsecond=0)
    clock = Clock()
    clock.skew = evening.timestamp() - time.time()
    morning = (evening + timedelta(days=1)).replace(hour=8)
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg, clock) as gw:
            await gw.store.write(
                lambda: gw.store.accounts.update_account(
                    "acme", bulk=True, quiet_start="21:00", quiet_end="08:00"
                )
            )
            early = (morning - timedelta(hours=1)).timestamp()
            code, text = said(await gw.send(mail(to("601123451"), "Standup", Expiry_Date=expiry_date(early))))
            assert code == 554, text
            why = f"before its SMS may go at {morning:%Y-%m-%d %H:%M %Z} (the account's quiet hours)"
            shown = datetime.fromtimestamp(early, tz)
            assert text == replies.EXPIRED.format(expiry=f"{shown:%Y-%m-%d %H:%M %Z}", why=why)[4:]
            assert gw.states() == []
            later = (morning + timedelta(hours=1)).timestamp()
            lunch = mail(to("601123452"), "Lunch", Expiry_Date=expiry_date(later))
            assert (await gw.send(lunch)).error is None
            db = gw.store.db.conn
            [(start, expires_at)] = db.execute("SELECT next_attempt_at, expires_at FROM parts").fetchall()
            assert (start, expires_at) == (morning.timestamp(), pytest.approx(later, abs=1e-3))
    assert smsc.received == []


async def test_an_expires_header_with_another_meaning_refuses_nothing(tmp_path: Path) -> None:
    # `Expires:` is PHP's nocache header (19 Nov 1981), the epoch, or a netnews article's expiry
    # carried through a list gateway: a past one is ignored, as no `Expires:` would be. Only
    # Outlook's `Expiry-Date:` refuses; an `Expires:` ahead still shortens the validity.
    clock = Clock()
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg, clock) as gw:
            other_meanings = {
                "601123471": "Thu, 19 Nov 1981 08:52:00 GMT",
                "601123472": "1 Jan 70 00:00 GMT",
                "601123473": "Thu, 01 Jan 1970 00:00:00 GMT",
                "601123474": expiry_date(int(clock()) - HOUR),
            }
            for number, value in other_meanings.items():
                res = await gw.send(mail(to(number), "Form submitted", Expires=value))
                assert res.error is None and not res.refused, (value, said(res))
            # A past `Expires:` beside an `Expiry-Date:` ahead: the Expiry-Date is the validity.
            both = mail(
                to("601123475"),
                "Call me back",
                Expires="Thu, 19 Nov 1981 08:52:00 GMT",
                Expiry_Date=expiry_date(int(clock()) + HOUR),
            )
            assert (await gw.send(both)).error is None
            ahead = mail(to("601123476"), "Door code", Expires=expiry_date(int(clock()) + 2 * HOUR))
            assert (await gw.send(ahead)).error is None
            await smsc.wait_for(6)
            valid = validities(gw.store.db.conn)
    for number in other_meanings:
        assert valid[f"+48{number}"] == pytest.approx(DAY, abs=1e-3), number
    assert valid["+48601123475"] == pytest.approx(HOUR, abs=5)
    assert valid["+48601123476"] == pytest.approx(2 * HOUR, abs=5)
