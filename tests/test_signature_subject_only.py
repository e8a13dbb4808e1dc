"""A subject-only mail whose body is nothing but what the sender's mail server or program added sends
its subject alone (R-1.3).

"Awaria zasilania w serwerowni B, agregat uruchomiony" with nothing in the body but the company's
confidentiality notice (Polish or English, plain or HTML under an <hr>) reached the phone as
"Awaria zasilania w serwerowni: Treść tej wiadomości jest poufna …": 4 UCS-2 parts for a subject of
one GSM part. A notice opening the text is kept by the cut (nothing of the person's stands above
it), and `only_signature`, which sends a subject alone under a body of nothing but a signature,
looked for sign-offs only. A register entry alone stays: under "Dane do faktury" it is the message.

Outlook's automatic signature with no sign-off ("Jan Kowalski\\nDyrektor Handlowy\\nACME Sp. z o.o.\\n
tel. …") under a subject goes too, when its name is the From's display name; under a subject that
asks to be called ("Proszę o pilny kontakt") the number is what the phone needs, and a colleague's
details sent under a subject are the message. Below the person's text, the same signature with no
phone (a name, a title, a company: `_MailAutoSig` in Outlook's HTML) went to the phone, since a
company signature needed two contact details; the From's display name and a title now suffice.

At `only_signature` and `clean_body`, and through a real SMTP client into the running daemon and
out to its built-in SMPP simulator, whose records give the text and the parts.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.smtp.textclean import clean_body, only_signature
from tests.conftest import DOMAIN, free_port, mail, running_gateway
from tests.test_signatures_footer_text import parts_got
from tests.test_two_way import two_way_config

SUBJECT = "Awaria zasilania w serwerowni B, agregat uruchomiony"
NOTICE_PL = (
    "Treść tej wiadomości jest poufna i przeznaczona wyłącznie dla adresata. Jeżeli nie jest Pan/Pani "
    "adresatem, prosimy o powiadomienie nadawcy i usunięcie wiadomości. ACME Sp. z o.o., KRS 0000123456."
)
NOTICE_EN = (
    "This e-mail and any attachments are confidential and intended solely for the addressee. If you have "
    "received it in error, please notify the sender and delete it. Any copying or distribution is prohibited."
)
SENDER = "Jan Kowalski <jan.kowalski@acme.pl>"
BLOCK = "Jan Kowalski\nDyrektor Handlowy\nACME Sp. z o.o.\ntel. 601 222 333"
# Outlook's text alternative of a new mail with its automatic signature, no phone in it.
AUTOSIG_TEXT = "Odbiorę o 17.\n\nJan Kowalski\nKierownik Działu Zakupów\nACME Sp. z o.o."
AUTOSIG_HTML = (
    "<html><body><div class=WordSection1><p class=MsoNormal>Odbiorę o 17.<o:p></o:p></p>"
    '<p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal><a name="_MailAutoSig"><b>Jan Kowalski'
    "</b><o:p></o:p></a></p><p class=MsoNormal><span style='mso-bookmark:_MailAutoSig'>Kierownik Działu "
    "Zakupów</span><o:p></o:p></p><p class=MsoNormal><span style='mso-bookmark:_MailAutoSig'>ACME Sp. z o.o."
    "</span><o:p></o:p></p></div></body></html>"
)


@pytest.mark.parametrize("notice", [NOTICE_PL, NOTICE_EN, f"{NOTICE_PL}\n\ntel. 22 123 45 67\nwww.acme.pl"])
def test_a_body_of_a_notice_alone_is_only_a_signature(notice: str) -> None:
    assert only_signature(clean_body(notice).text)
    assert only_signature(f"Jan Kowalski\nACME Sp. z o.o.\n\n{notice}")


KEPT = [
    f"Dzień dobry,\nPozdrawiam serdecznie\n{NOTICE_PL}",  # a greeting above the notice
    f"Serwer wstanie o 15.\n\n{NOTICE_PL}",
    "ACME Sp. z o.o.\nul. Prosta 1, 00-001 Warszawa\nNIP 525-000-00-00, KRS 0000123456, kapitał zakładowy"
    " 50 000 zł, Sąd Rejonowy dla m.st. Warszawy",  # a register entry: company data sent on purpose
]


@pytest.mark.parametrize("body", KEPT)
def test_a_notice_below_the_persons_text_or_a_register_entry_is_text(body: str) -> None:
    assert not only_signature(body, sender=SENDER, subject="Dane do faktury")


def test_the_senders_own_block_alone_under_a_subject() -> None:
    assert only_signature(BLOCK, sender=SENDER, subject="Serwer padł, restart o 15")
    assert only_signature("Jan Kowalski\nKierownik Działu Zakupów\nACME Sp. z o.o.", sender=SENDER)
    # Someone else's, a room below the name, a subject asking to be called, no From given: the message.
    assert not only_signature(BLOCK, sender="Anna Nowak <anna.nowak@acme.pl>", subject="Nowy opiekun")
    assert not only_signature("Jan Kowalski\nSala 204", sender=SENDER, subject="Spotkanie")
    assert not only_signature(BLOCK, sender=SENDER, subject="Proszę o pilny kontakt w sprawie umowy 12/2026")
    assert not only_signature(BLOCK)


def test_outlooks_signature_with_no_phone_below_the_text_goes() -> None:
    assert clean_body(AUTOSIG_TEXT, sender=SENDER).text == "Odbiorę o 17."
    assert clean_body("Spotkanie o 10.\n\nJan Kowalski\nSala 204", sender=SENDER).text.endswith("Sala 204")
    assert clean_body(AUTOSIG_TEXT, sender="Anna Nowak <anna@acme.pl>").text == AUTOSIG_TEXT


def _plain(number: str, subject: str, body: str) -> EmailMessage:
    msg = mail(f"{number}@{DOMAIN}", body, subject)
    msg.replace_header("From", SENDER)
    return msg


def _html(number: str, subject: str, markup: str, text: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, f"{number}@{DOMAIN}", subject
    if text is None:
        msg.set_content(markup, subtype="html")
    else:
        msg.set_content(text)
        msg.add_alternative(markup, subtype="html")
    return msg


async def phone_got(tmp_path: Path, messages: list[EmailMessage]) -> list[tuple[str, int]]:
    """What each phone got, its parts joined in order, and how many parts, for each mail (its To the
    number the mail goes to, `6011236NN`)."""
    cfg = two_way_config(tmp_path, "smpp", relay_port=free_port())
    numbers = [str(msg["To"]).split("@")[0] for msg in messages]
    async with running_gateway(cfg) as gw:
        for msg in messages:
            assert (await gw.send(msg)).error is None
        return [("".join(str(r["text"]) for r in got), len(got)) for got in await parts_got(gw, numbers)]


async def test_through_smtp_the_subject_goes_alone_above_a_notice(tmp_path: Path) -> None:
    sent = [
        _plain("601123610", SUBJECT, f"\n{NOTICE_PL}\n"),
        _html("601123611", SUBJECT, f"<html><body><p>&nbsp;</p><hr><p>{NOTICE_PL}</p></body></html>"),
        _plain("601123612", SUBJECT, NOTICE_EN),
        _plain("601123613", "Paczka", AUTOSIG_TEXT),
        _html("601123614", "Paczka", AUTOSIG_HTML, AUTOSIG_TEXT),
        _html("601123615", "Paczka", AUTOSIG_HTML),
        # What the person sent stays.
        _plain("601123616", "Serwer", f"Wstanie o 15.\n\n{NOTICE_EN}"),
        _plain("601123617", "Spotkanie", "O 10.\n\nJan Kowalski\nSala 204"),
    ]
    assert await phone_got(tmp_path, sent) == [
        (SUBJECT, 1),
        (SUBJECT, 1),
        (SUBJECT, 1),
        ("Paczka: Odbiorę o 17.", 1),
        ("Paczka: Odbiorę o 17.", 1),
        ("Paczka: Odbiorę o 17.", 1),
        ("Serwer: Wstanie o 15.", 1),
        ("Spotkanie: O 10.\n\nJan Kowalski\nSala 204", 1),
    ]


async def test_through_smtp_the_subject_goes_alone_above_the_senders_own_block(tmp_path: Path) -> None:
    sent = [
        _plain("601123630", "Serwer padł, restart o 15", BLOCK),
        # Asked to be called: the number is what the phone needs.
        _plain("601123631", "Proszę o pilny kontakt w sprawie umowy 12/2026", BLOCK),
    ]
    assert await phone_got(tmp_path, sent) == [
        ("Serwer padł, restart o 15", 1),
        (f"Proszę o pilny kontakt w: {BLOCK}", 2),
    ]


async def test_through_smtp_outlooks_html_bookmark_marks_its_signature(tmp_path: Path) -> None:
    # Sent from a shared mailbox whose display name is no person's: the bookmark alone tells. A
    # postscript typed below the signature is the person's and stays; the signature above it goes.
    below = "PS. Brama od ul. Polnej jest zamknięta po 16, proszę wtedy dzwonić na portiernię albo do mnie"
    below += " na komórkę."
    mails = [
        _html("601123632", "Paczka", AUTOSIG_HTML),
        _html("601123633", "Paczka", AUTOSIG_HTML.replace("</div>", f"<p class=MsoNormal>{below}</p></div>")),
    ]
    for msg in mails:
        msg.replace_header("From", "ACME Zakupy <zakupy@acme.pl>")
    assert await phone_got(tmp_path, mails) == [
        ("Paczka: Odbiorę o 17.", 1),
        (f"Paczka: Odbiorę o 17.\n\n{below}", 2),
    ]
