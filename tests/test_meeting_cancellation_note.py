"""An Outlook meeting cancellation keeps the organiser's note (R-1.3).

A cancellation (iTIP METHOD:CANCEL) sent its subject alone, as an answer to an invitation does:
"Odwołane: Przegląd kwartalny" reached the phone and "Przepraszam, przenosimy na czwartek 10:00."
did not. Outlook's cancellation text is what the organiser wrote below its generated "Kiedy:/Gdzie:"
lines; those go (the calendar part gives the day, put right after the subject that says it was
cancelled when the note does not say it: below the note it read as the new time), the note stays.
An answer, and Google Calendar's cancellation, whose text is its own boilerplate, still send
their subject alone.

read_mail as the intake reads a mail off the wire, then through a real SMTP client into the running
daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

import base64
from pathlib import Path

from gateway.smtp.intake import read_mail
from tests.conftest import DOMAIN, STAFF, free_port, running_gateway
from tests.test_two_way import two_way_config

ICS = (
    "BEGIN:VCALENDAR\r\nMETHOD:{method}\r\nPRODID:Microsoft Exchange Server 2010\r\nVERSION:2.0\r\n"
    "BEGIN:VEVENT\r\nSUMMARY:Przegląd kwartalny\r\n"
    "DTSTART;TZID=Central European Standard Time:20261208T100000\r\n"
    "DTEND;TZID=Central European Standard Time:20261208T110000\r\nLOCATION:Sala 2\r\n"
    "STATUS:CANCELLED\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
WHEN = (
    "Kiedy: wtorek, 8 grudnia 2026 10:00-11:00 (UTC+01:00) Belgrad, Bratysława, Budapeszt, Lublana,"
    " Praga.\r\n"
    "Gdzie: Sala 2\r\n\r\n*~*~*~*~*~*~*~*~*~*\r\n\r\n"
)
NOTE = "Przepraszam, przenosimy na czwartek 10:00."
OLD_TEXT = "Proszę przygotować liczby za kwartał."  # the invitation's text, which Outlook quotes below
SUBJECT = "Odwołane: Przegląd kwartalny"


def outlook(text: str, method: str = "CANCEL", to: str = f"601123456@{DOMAIN}") -> bytes:
    """Outlook's cancellation: multipart/alternative of its text and the calendar."""
    ics = base64.encodebytes(ICS.format(method=method).encode()).decode()
    body = base64.encodebytes(text.encode()).decode()
    return (
        f"From: {STAFF}\r\nTo: {to}\r\nSubject: =?utf-8?b?{base64.b64encode(SUBJECT.encode()).decode()}?=\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n"
        "--a\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{body}\r\n--a\r\nContent-Type: text/calendar; charset=utf-8; method={method}\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{ics}\r\n--a--\r\n"
    ).encode()


def test_the_organisers_note_is_sent_with_the_day() -> None:
    # As Outlook writes it: the note, its header of the cancelled meeting, the invitation's text.
    assert (
        read_mail(outlook(f"{NOTE}\r\n\r\n{WHEN}{OLD_TEXT}")).text == f"{SUBJECT}: 2026-12-08 10:00\n{NOTE}"
    )
    # The note alone; one that names the day gets no second one.
    assert read_mail(outlook(NOTE)).text == f"{SUBJECT}: 2026-12-08 10:00\n{NOTE}"
    assert read_mail(outlook("Odwołane, 2026-12-08 jestem u klienta.")).text == (
        f"{SUBJECT}: Odwołane, 2026-12-08 jestem u klienta."
    )


def test_a_cancellation_without_a_note_and_an_answer_send_the_subject() -> None:
    assert read_mail(outlook(WHEN + OLD_TEXT)).text == SUBJECT
    assert read_mail(outlook(NOTE, method="REPLY")).text == SUBJECT


async def test_through_smtp_the_phone_gets_the_note(tmp_path: Path) -> None:
    cfg = two_way_config(tmp_path, "smpp", relay_port=free_port())
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        rcpt = f"601123456@{DOMAIN}"
        assert (await gw.send(outlook(f"{NOTE}\r\n\r\n{WHEN}{OLD_TEXT}", to=rcpt), [rcpt])).error is None

        def whole() -> bool:
            return (
                bool(core.records)
                and len(core.records) == (core.records[0]["concat"] or {"total": 1})["total"]
            )

        await gw.until(whole)
        parts = sorted(core.records, key=lambda r: r["concat"]["seq"] if r["concat"] else 0)
        assert "".join(str(r["text"]) for r in parts) == f"{SUBJECT}: 2026-12-08 10:00\n{NOTE}"
