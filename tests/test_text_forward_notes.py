"""What stands above a forward (R-1.3). A "note" that is only the sender's signature or a phone's tail
("Wysłane z iPhone'a", Outlook's automatic signature, "Pozdrawiam" and a name, a "-- " block) is no
note: the forwarded text goes, as with nothing above; before, the quote went as below a note, the
signature as a signature, and the phone got the subject alone ("reklamacja"). A note that points
below ("FYI", "Poniżej numer klienta, zadzwoń dziś:") goes with the forwarded text; a note of its own
("Zadzwoń do niego dziś.") still goes alone, also typed without Polish letters ("Zobacz ponizej",
"Przesylam": before, only the spellings with them pointed below). Through the intake's reading of a
whole mail, and over SMTP to the daemon's simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.intake import read_mail
from tests.test_intake import mail
from tests.test_subject_cut_numbers import phone_texts

TEXT = "Towar uszkodzony, proszę o kontakt 601 999 888."
BLOCK = (
    "From: Klient <klient@firma.pl>\nSent: Monday, December 7, 2026 10:49\nTo: biuro@acme.pl\n"
    "Subject: reklamacja"
)
FORWARDS = [
    f"-----Original Message-----\n{BLOCK}\n\n{TEXT}\n",
    f"{'_' * 32}\n{BLOCK}\n\n{TEXT}\n",
    "---------- Forwarded message ---------\nFrom: Klient <klient@firma.pl>\n"
    "Date: Mon, Dec 7, 2026 at 10:49 AM\n"
    f"Subject: reklamacja\nTo: <biuro@acme.pl>\n\n{TEXT}\n",
]
SIGNATURES = [
    "Wysłane z iPhone'a",
    "Pozdrawiam\nJan Kowalski",
    "-- \nJan Kowalski\nACME Sp. z o.o.",
    "Jan Kowalski\nKierownik Działu Obsługi\nACME Sp. z o.o.\ntel. 601 222 333",
]
B = "=_f"
OUTLOOK_HTML = (
    "<html><body><p class=MsoNormal><o:p>&nbsp;</o:p></p>"
    '<p class=MsoNormal><a name="_MailAutoSig">Jan Kowalski'
    "<o:p></o:p></a></p><p class=MsoNormal><span style='mso-bookmark:_MailAutoSig'>ACME Sp. z o.o.</span></p>"
    "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'><p class=MsoNormal>"
    "<b>From:</b> Klient &lt;klient@firma.pl&gt;<br><b>Sent:</b> Monday, December 7, 2026 10:49<br>"
    "<b>To:</b> "
    f"biuro@acme.pl<br><b>Subject:</b> reklamacja</p></div><p class=MsoNormal>{TEXT}</p></body></html>"
)
OUTLOOK = (
    f"--{B}\nContent-Type: text/plain; charset=utf-8\n\n\n\nJan Kowalski\nACME Sp. z o.o.\n\n"
    f"{BLOCK}\n\n{TEXT}\n"
    f"--{B}\nContent-Type: text/html; charset=utf-8\n\n{OUTLOOK_HTML}\n--{B}--\n"
)


def read(body: str, subject: str = "FW: reklamacja", **kw: str) -> str:
    raw = mail(body, subject=subject, **kw).replace(b"From: Jan <", b"From: Jan Kowalski <")
    return read_mail(raw).body


@pytest.mark.parametrize("forward", FORWARDS)
@pytest.mark.parametrize("signature", SIGNATURES)
def test_a_signature_alone_above_a_forward_is_no_note(signature: str, forward: str) -> None:
    assert read(f"\n\n{signature}\n\n{forward}") == TEXT


def test_outlooks_automatic_signature_above_a_forward_in_html_is_no_note() -> None:
    assert read(OUTLOOK, ctype=f'multipart/alternative; boundary="{B}"') == TEXT


@pytest.mark.parametrize("note", ["FYI", "Do wiadomości.", "Poniżej numer klienta, zadzwoń dziś:"])
def test_a_note_pointing_below_goes_with_the_forwarded_text(note: str) -> None:
    assert read(f"{note}\n\n{FORWARDS[0]}") == f"{note}\n\n{TEXT}"


ASCII_NOTES = [
    "Zobacz ponizej",
    "Przesylam",
    "Do wiadomosci",
    "Przekazuje do wiadomosci",
    "Ponizej zgloszenie klienta:",
    "Ponizsze zgloszenie:",
    "PRZESYŁAM.",
    # An ellipsis is one sign: read as "..." it passed the three a note may end in.
    "FYI …",
    "Przesyłam…!",
    "Fyi…!!",
]


@pytest.mark.parametrize("note", ASCII_NOTES)
def test_a_note_typed_without_polish_letters_points_below_too(note: str) -> None:
    assert read(f"{note}\n\n{FORWARDS[0]}") == f"{note}\n\n{TEXT}"


@pytest.mark.parametrize(
    "note",
    ["Zadzwoń do niego dziś.", "FYI: klient czeka", "Pozdrawiam, zadzwoń dziś.", "Zadzwon do niego dzis."],
)
def test_a_note_of_its_own_still_goes_alone(note: str) -> None:
    assert read(f"{note}\n\n{FORWARDS[0]}") == note


SENT_NOTES = [*ASCII_NOTES[:2], "Przesyłam…!"]


async def test_through_smtp_the_forward_under_an_ascii_note_reaches_the_phone(tmp_path: Path) -> None:
    got = await phone_texts(
        tmp_path, [mail(f"{note}\n\n{FORWARDS[0]}", subject="FW: Awaria") for note in SENT_NOTES]
    )
    assert got == [f"Awaria: {note}\n\n{TEXT}" for note in SENT_NOTES]
