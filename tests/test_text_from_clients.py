"""What reached phones from four kinds of mail as Outlook, Google and Thunderbird write them.

- A meeting invitation: a mail that was only text/calendar went out as its iCalendar source
  ("BEGIN:VCALENDAR…", seven UCS-2 parts), and Outlook's invitation (text, HTML, calendar) lost the
  time and place, which only the calendar part holds. The phone now gets the title, the start in
  `[gateway] timezone` and the place; an .ics file attached to an ordinary mail stays an attachment.
- A subject-only alert sent from Outlook carries the automatic signature as its body: the phone got
  "Serwer padł w serwerowni na: Pozdrawiam,\\nJan Kowalski…" instead of the whole subject.
- format=flowed: a soft-broken line just above the "-- " separator swallowed it ("jutro. --"), so the
  signature below went out too.
- Outlook's reply within one company writes its `____` rule and "Od: Jan Kowalski / Data: … / Do: …"
  with no address and no "Wysłane:": the quoted mail went to the phone.

Each has a negative twin: what a person wrote is never cut. read_mail() directly, then a real SMTP
client to a running daemon whose built-in simulator records what the phone got.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.smtp.charsets import unflow
from gateway.smtp.intake import IntakeOptions, read_mail
from gateway.smtp.textclean import clean_body
from tests.conftest import DOMAIN, STAFF, free_port, running_gateway, smtp_sink
from tests.test_cut_from import daemon_config
from tests.test_intake import mail, part

SUBJECT = "=?utf-8?q?Narada_bud=C5=BCetowa?="
TITLE = "Narada budżetowa"


def ics(
    method: str = "REQUEST",
    start: str = "DTSTART;TZID=Central European Standard Time:20261207T100000",
    location: str = "LOCATION;LANGUAGE=pl-PL:Sala 204",
    summary: str = f"SUMMARY;LANGUAGE=pl-PL:{TITLE}",
    extra: str = "",
) -> str:
    """An invitation as Outlook (Exchange 2010) writes it, CRLF line ends."""
    lines = [
        "BEGIN:VCALENDAR",
        f"METHOD:{method}",
        "PRODID:Microsoft Exchange Server 2010",
        "VERSION:2.0",
        extra,
        "BEGIN:VEVENT",
        "ORGANIZER;CN=Jan Kowalski:mailto:jan@example.com",
        "DESCRIPTION;LANGUAGE=pl-PL:Omówienie budżetu\\n",
        summary,
        start,
        "DTEND;TZID=Central European Standard Time:20261207T110000",
        "UID:040000008200E00074C5B7101A82E00800000000",
        location,
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(f"{line}\r\n" for line in lines if line)


def b64(text: str) -> str:
    return base64.encodebytes(text.encode()).decode()


def calendar_only(calendar: str, subject: str | None = SUBJECT, method: str = "REQUEST") -> bytes:
    return mail(
        b64(calendar), subject=subject, ctype=f'text/calendar; charset="utf-8"; method={method}', cte="base64"
    )


def multipart(sub: str, *parts: bytes, subject: str | None = SUBJECT, boundary: str = "b1") -> bytes:
    body = (
        b"".join(b"--" + boundary.encode() + b"\n" + p + b"\n" for p in parts) + f"--{boundary}--\n".encode()
    )
    return mail(body, subject=subject, ctype=f'multipart/{sub}; boundary="{boundary}"', cte="")


def outlook_invite(text: str = "Omówienie budżetu\n", calendar: str | None = None) -> bytes:
    return multipart(
        "alternative",
        part('text/plain; charset="utf-8"', text),
        part('text/html; charset="utf-8"', f"<html><body><p>{text}</p></body></html>"),
        part('text/calendar; charset="utf-8"; method="REQUEST"', calendar or ics()),
    )


def test_a_mail_that_is_only_an_invitation_sends_its_time_and_place() -> None:
    m = read_mail(calendar_only(ics()))
    assert m.text == f"{TITLE}: 2026-12-07 10:00, Sala 204"
    assert m.removed == []  # the calendar part is no attachment the sender must be told of


def test_outlooks_invitation_adds_the_time_and_place_below_its_text() -> None:
    m = read_mail(outlook_invite())
    assert m.text == f"{TITLE}: Omówienie budżetu\n2026-12-07 10:00, Sala 204"


def test_a_body_that_says_the_time_and_place_is_sent_as_it_is() -> None:
    m = read_mail(outlook_invite("Omówienie budżetu, 10:00, Sala 204.\n"))
    assert m.text == f"{TITLE}: Omówienie budżetu, 10:00, Sala 204."
    m = read_mail(outlook_invite("Zaczynamy o 10:00.\n"))
    assert m.text == f"{TITLE}: Zaczynamy o 10:00.\nSala 204"  # only what it lacks


def test_googles_invitation_reads_the_calendar_alternative_and_leaves_the_ics_file_attached() -> None:
    google = ics(start="DTSTART:20261207T090000Z", location="LOCATION:Sala 204")
    raw = multipart(
        "mixed",
        b'Content-Type: multipart/alternative; boundary="b2"\n\n'
        + b"--b2\n"
        + part('text/plain; charset="UTF-8"', "Omówienie budżetu\n")
        + b"\n--b2\n"
        + part('text/calendar; charset="UTF-8"; method=REQUEST', google)
        + b"\n--b2--\n",
        part(
            'application/ics; name="invite.ics"',
            b64(google),
            'Content-Disposition: attachment; filename="invite.ics"\nContent-Transfer-Encoding: base64\n',
        ),
    )
    m = read_mail(raw)
    assert m.text == f"{TITLE}: Omówienie budżetu\n2026-12-07 10:00, Sala 204"  # 09:00 UTC is 10:00 in Warsaw
    assert "attachments not sent (1)" in m.removed


@pytest.mark.parametrize(
    ("start", "zone", "shown"),
    [
        ("DTSTART:20261207T090000Z", "Europe/Warsaw", "2026-12-07 10:00"),
        ("DTSTART:20260701T080000Z", "Europe/Warsaw", "2026-07-01 10:00"),  # summer time
        ("DTSTART;TZID=Europe/Warsaw:20261207T100000", "UTC", "2026-12-07 09:00"),
        ('DTSTART;TZID="America/New_York":20261207T100000', "Europe/Warsaw", "2026-12-07 16:00"),
        ("DTSTART;TZID=/mozilla.org/20050126_1/Europe/Warsaw:20261207T100000", "UTC", "2026-12-07 09:00"),
        ("DTSTART;TZID=Some Unknown Zone:20261207T100000", "UTC", "2026-12-07 10:00"),  # as written
        ("DTSTART:20261207T100000", "UTC", "2026-12-07 10:00"),  # floating
        ("DTSTART;VALUE=DATE:20261207", "Europe/Warsaw", "2026-12-07"),  # all day
        ("DTSTART:20261307T100000", "Europe/Warsaw", ""),  # no such month: no time at all
    ],
)
def test_the_start_is_shown_in_the_gateways_zone(start: str, zone: str, shown: str) -> None:
    m = read_mail(calendar_only(ics(start=start, location="")), IntakeOptions(zone=zone))
    assert m.text == f"{TITLE}: {shown}".rstrip(": ")


def test_folded_and_escaped_values_are_read_as_written() -> None:
    # Folded inside "ę" (RFC 5545 folds at octets), an escaped comma, semicolon and newline.
    where = b"LOCATION:Sala 204\\, budynek B\\; pi\xc4\r\n \x99tro 2\\n" + "wejście od podwórza".encode()
    data = ics(location="@@", summary="SUMMARY:Przegląd\r\n  kwartalny").encode().replace(b"@@", where)
    raw = mail(
        base64.encodebytes(data).decode(),
        subject="Spotkanie",
        ctype='text/calendar; charset="utf-8"; method=REQUEST',
        cte="base64",
    )
    assert read_mail(raw).text == (
        "Spotkanie: Przegląd kwartalny\n2026-12-07 10:00, Sala 204, budynek B; piętro 2, wejście od podwórza"
    )


def test_a_time_zones_and_an_alarms_fields_are_not_the_events() -> None:
    zone = (
        "BEGIN:VTIMEZONE\r\nTZID:Central European Standard Time\r\nBEGIN:STANDARD\r\n"
        "DTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE"
    )
    alarm = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nSUMMARY:Przypomnienie\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
    calendar = ics(extra=zone, location=f"{alarm}LOCATION:Sala 204")
    m = read_mail(calendar_only(calendar, subject="Spotkanie"))
    assert m.text == f"Spotkanie: {TITLE}\n2026-12-07 10:00, Sala 204"


def test_a_cancellation_or_an_answer_sends_no_calendar_source() -> None:
    m = read_mail(calendar_only(ics(method="CANCEL"), subject="Anulowano: Narada", method="CANCEL"))
    assert m.text == "Anulowano: Narada"
    m = read_mail(calendar_only(ics(method="REPLY"), subject="Zaakceptowano: Narada", method="REPLY"))
    assert m.text == "Zaakceptowano: Narada"


def test_an_invitation_attached_to_an_ordinary_mail_changes_nothing() -> None:
    raw = multipart(
        "mixed",
        part('text/plain; charset="utf-8"', "Przesyłam zaproszenie, wpisz do kalendarza.\n"),
        part(
            'text/calendar; charset="utf-8"; method=REQUEST; name="invite.ics"',
            ics(),
            'Content-Disposition: attachment; filename="invite.ics"\n',
        ),
        subject="Zaproszenie",
    )
    m = read_mail(raw)
    assert m.text == "Zaproszenie: Przesyłam zaproszenie, wpisz do kalendarza."
    assert m.removed == ["attachments not sent (1)"]


def test_other_text_formats_are_not_sent_as_source_and_a_text_file_still_is() -> None:
    card = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jan Kowalski\r\nTEL:+48221234567\r\nEND:VCARD\r\n"
    assert read_mail(mail(card, subject="Kontakt", ctype="text/x-vcard; charset=utf-8")).text == "Kontakt"
    # A one-part mail whose text/plain is named as a file: read, as before.
    raw = mail(
        "Raport gotowy.", subject="Raport", headers='Content-Disposition: attachment; filename="r.txt"\n'
    )
    assert read_mail(raw).text == "Raport: Raport gotowy."


ALERT = "Serwer padł w serwerowni na drugim piętrze"
OUTLOOK_SIGNATURE = "\n\nPozdrawiam,\nJan Kowalski\nACME Sp. z o.o.\ntel. +48 22 123 45 67\n"


def test_a_subject_only_mail_with_outlooks_signature_sends_the_whole_subject() -> None:
    m = read_mail(mail(OUTLOOK_SIGNATURE, subject=ALERT))
    assert m.text == ALERT and m.body == ""
    assert "signature" in m.removed and not any("subject cut" in r for r in m.removed)


@pytest.mark.parametrize("body", ["Zadzwoń do mnie.", "Jan Kowalski", "Ok", "Dzięki, Jan"])
def test_a_one_line_text_below_a_subject_is_still_sent(body: str) -> None:
    assert read_mail(mail(body, subject="Serwer")).text == f"Serwer: {body}"


def test_without_a_subject_a_signature_alone_is_still_sent() -> None:
    """It may be all the person wrote; refusing it or sending nothing would lose it."""
    assert read_mail(mail(OUTLOOK_SIGNATURE, subject=None)).text == OUTLOOK_SIGNATURE.strip()


FLOWED = "text/plain; charset=utf-8; format=flowed"


def test_a_soft_line_above_the_signature_separator_ends_there() -> None:
    assert (
        unflow("Do zobaczenia \njutro. \n-- \nJan Kowalski\nACME")
        == "Do zobaczenia jutro. \n-- \nJan Kowalski\nACME"
    )
    assert unflow("> Do \n> jutro. \n> -- \n> Jan") == "> Do jutro. \n> -- \n> Jan"
    assert unflow("Do \njutro. \n-- \nJan", delsp=True) == "Dojutro.\n-- \nJan"
    m = read_mail(mail("Do zobaczenia \njutro. \n-- \nJan Kowalski\nACME\n", subject=None, ctype=FLOWED))
    assert m.text == "Do zobaczenia jutro." and "signature" in m.removed


def test_dashes_that_are_no_separator_still_flow() -> None:
    assert unflow("Cena \n--do ustalenia") == "Cena --do ustalenia"
    assert unflow("Cena \n-- do ustalenia") == "Cena -- do ustalenia"


INTERNAL_REPLY = (
    "Potwierdzam.\n\n________________________________\nOd: Jan Kowalski\n"
    "Data: czwartek, 3 grudnia 2026 10:00\nDo: Anna Nowak\nTemat: Spotkanie\n\nCzy potwierdzasz?\n"
)


def test_outlooks_internal_reply_header_after_its_rule_is_a_quote() -> None:
    m = read_mail(mail(INTERNAL_REPLY, subject="Odp: Spotkanie"))
    assert m.text == "Spotkanie: Potwierdzam." and "quoted reply" in m.removed


def test_an_internal_forward_with_nothing_above_it_sends_the_forwarded_text() -> None:
    body = INTERNAL_REPLY.split("\n\n", 1)[1]
    m = read_mail(mail(body, subject="PD: Spotkanie"))
    assert m.text == "Spotkanie: Czy potwierdzasz?" and "forward header" in m.removed


@pytest.mark.parametrize(
    "body",
    [
        "Grafik dyżurów\nOd: poniedziałku\nData: 7 grudnia\nDo: piątku\nTemat: serwis",  # no rule
        "Plan:\n______________\nOd: 10:00\nDo: 12:00\nTemat: przegląd",  # no date line
        "Plan:\n______________\nOd: Jan\nData: jutro\nDo: Anna",  # a date without a digit
        "Spotkanie przeniesione. Od: jutra, Do: piątku.",
    ],
)
def test_lines_that_merely_start_with_od_are_kept(body: str) -> None:
    assert clean_body(body).text == body
    assert read_mail(mail(body, subject="Plan")).body == body


async def test_the_phone_gets_the_invitation_and_the_whole_subject(tmp_path: Path) -> None:
    relay = free_port()
    cfg, _ = daemon_config(tmp_path, relay)
    to = [f"601123456@{DOMAIN}"]
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        invitation = calendar_only(ics()).replace(b"Jan <jan@example.com>", STAFF.encode())
        assert (await gw.send(invitation, to, sender=STAFF)).error is None
        await gw.until(lambda: len(core.records) >= 1)
        alert = mail(OUTLOOK_SIGNATURE, subject=ALERT).replace(b"m1@example.com", b"m2@example.com")
        assert (await gw.send(alert, to, sender=STAFF)).error is None
        await gw.until(lambda: len(core.records) >= 2)
        await asyncio.sleep(0.3)  # a further part would have come by now
        assert [r["text"] for r in core.records] == [f"{TITLE}: 2026-12-07 10:00, Sala 204", ALERT]


async def test_the_invitations_start_is_shown_in_the_configured_zone(tmp_path: Path) -> None:
    relay = free_port()
    _cfg, path = daemon_config(tmp_path, relay)
    text = path.read_text().replace("[gateway]\n", '[gateway]\ntimezone = "UTC"\n', 1)
    cfg = parse_config(text, source="test", base_dir=tmp_path)
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        invitation = calendar_only(ics()).replace(b"Jan <jan@example.com>", STAFF.encode())
        assert (await gw.send(invitation, [f"601123456@{DOMAIN}"], sender=STAFF)).error is None
        await gw.until(lambda: len(core.records) >= 1)
        assert [r["text"] for r in core.records] == [f"{TITLE}: 2026-12-07 09:00, Sala 204"]  # 10:00 CET
