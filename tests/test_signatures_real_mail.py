"""Signatures and HTML text that reached the phone (R-1.3).

A company signature with a bilingual sign-off ("Pozdrawiam / Best regards") and a PL/EN disclaimer
turned "Spotkanie o 10:00." into 8 UCS-2 parts instead of one GSM part; a 9-line signature, the
plain "Sent from Outlook" lines of Outlook.com, Windows Mail and Yahoo, and every signature of an
HTML-only mail from a phone ("Get Outlook for iOS (https://aka.ms/o0ukef)": the link's target is
shown) went along; Outlook's HTML-only paragraphs came out with a blank line after each.

The mails in tests/data/signatures are what those programs send, read by the intake as it reads a
mail off the wire; one goes through SMTP into the running daemon and out to the built-in SMSC
simulator. Each rule widened here has its counterpart: what the writer meant stays.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.htmlbody import html_to_text
from gateway.smtp.intake import IntakeOptions, read_mail
from gateway.smtp.textclean import SIGNATURE, clean_body, only_signature
from tests.conftest import DOMAIN, STAFF, free_port, running_gateway
from tests.test_two_way import two_way_config

DATA = Path(__file__).parent / "data" / "signatures"

DISCLAIMER = (
    "Treść tej wiadomości jest poufna i prawnie chroniona. Odbiorcą może być jedynie jej adresat "
    "z wyłączeniem dostępu osób trzecich. Jeżeli nie jest Pan/Pani adresatem tej wiadomości, "
    "proszę ją usunąć.\n"
    "This e-mail and any attachments are confidential and may be legally privileged. If you are not the "
    "intended recipient, please delete it."
)
COMPANY = (
    "Jan Kowalski\nKierownik Działu Sprzedaży | Sales Manager\nACME Sp. z o.o.\n"
    "ul. Prosta 1, 00-001 Warszawa\ntel. +48 22 123 45 67 | kom. +48 601 123 456\nwww.acme.pl"
)

# (file, what goes to the phone). The account of 04 cuts from its disclaimer's first words.
MAILS = [
    (
        "01_outlook_alt_sig_disclaimer_plen.eml",
        "Spotkanie: Dzień dobry,\n\nSpotkanie przeniesione na 10:00 w sali 204.",
    ),
    (
        "02_outlook_htmlonly_sig_disclaimer_plen.eml",
        "Spotkanie: Dzień dobry,\n\nSpotkanie przeniesione na 10:00 w sali 204.",
    ),
    ("03_outlook_alt_pozdrawiam_comma_short_sig_disclaimer.eml", "Spotkanie: Spotkanie o 10:00."),
    ("04_outlook_sig_disclaimer_cut_account.eml", "Spotkanie: Spotkanie o 10:00."),
    ("05_outlook_z_powazaniem_sig_only_9_lines.eml", "Awaria: Serwer padł, dzwońcie do mnie."),
    ("67_pozdrawiam_slash_signoff_short.eml", "Spotkanie o 10."),
    ("10_outlook_ios_htmlonly.eml", "Spotkanie: Będę za 5 minut"),
    ("11_outlook_android_pl_htmlonly.eml", "Spotkanie: Będę za 5 minut"),
    ("12_outlook_ios_reply_htmlonly_with_quote.eml", "Spotkanie: Tak"),
    ("80_outlookcom_sent_from_outlook.eml", "Będę o 10."),
    ("81_win10_mail.eml", "Będę o 10."),
    ("82_yahoo_android.eml", "Będę o 10."),
    ("83_outlookcom_html.eml", "Będę o 10."),
]


@pytest.mark.parametrize(("name", "expected"), MAILS, ids=[m[0][:2] for m in MAILS])
def test_the_signature_of_a_real_mail_stays_off_the_phone(name: str, expected: str) -> None:
    cut = ("Treść tej wiadomości", "This e-mail and any attachments") if "_cut_" in name else ()
    mail = read_mail((DATA / name).read_bytes(), IntakeOptions(cut_from=cut))
    assert mail.text == expected
    assert SIGNATURE in mail.removed


def test_outlook_html_paragraphs_are_lines_not_paragraphs() -> None:
    # p.MsoNormal has no margin in Outlook's style sheet: a list of four is five lines, not nine.
    mail = read_mail((DATA / "84_outlook_html_msonormal_lines.eml").read_bytes())
    assert mail.text == "Lista zadań:\n1. Serwer\n2. Drukarka\n3. Router\n4. UPS"


def test_outlook_blank_paragraph_and_inline_margin_still_separate() -> None:
    # "<p class=MsoNormal>&nbsp;</p>" is the blank line the writer typed; a margin written on the
    # paragraph itself wins over the style sheet's.
    markup = (
        '<html><body><p class="MsoNormal">Dzień dobry,<o:p></o:p></p><p class="MsoNormal">&nbsp;</p>'
        '<p class="MsoNormal" style="margin-bottom:12.0pt">Sala 204.</p>'
        '<p class="MsoNormal">Jan</p></body></html>'
    )
    assert clean_body(html_to_text(markup, [])).text == "Dzień dobry,\n\nSala 204.\n\nJan"


def test_a_link_in_a_signature_container_shows_no_target_and_one_outside_does() -> None:
    for container in (
        'class="ms-outlook-mobile-signature"',
        'id="ms-outlook-mobile-signature"',
        'id="Signature"',
        'class="gmail_signature" data-smartmail="gmail_signature"',
        'class="moz-signature"',
    ):
        markup = (
            '<html><body><div>Spotkanie <a href="https://meet.google.com/abc-defg-hij">tutaj</a></div>'
            f'<div {container}><div>ACME <a href="https://acme.example/kontakt">kontakt</a></div></div></body></html>'
        )
        text = html_to_text(markup, [])
        assert "Spotkanie tutaj (https://meet.google.com/abc-defg-hij)" in text, container
        assert "acme.example" not in text and "kontakt" in text, container


# Bodies whose sign-off block is cut (body, what stays).
CUT = [
    ("Spotkanie o 10.\n\nPozdrawiam / Best regards\n" + COMPANY, "Spotkanie o 10."),
    ("Spotkanie o 10.\n\nZ poważaniem / Kind regards\nJan Kowalski", "Spotkanie o 10."),
    ("Spotkanie o 10.\n\nPozdrawiam | Regards\nJan Kowalski", "Spotkanie o 10."),
    ("Spotkanie o 10.\n\nPozdrawiam/Regards,\nJan", "Spotkanie o 10."),
    ("Spotkanie o 10.\n\nDziękuję i pozdrawiam\nJan Kowalski", "Spotkanie o 10."),
    ("Spotkanie o 10.\n\nZ pozdrowieniami\nJan Kowalski", "Spotkanie o 10."),
    # A disclaimer below the signature goes with it, right below the name too.
    (
        "Spotkanie o 10:00.\n\nPozdrawiam,\nJan Kowalski\nACME Sp. z o.o.\n\n" + DISCLAIMER,
        "Spotkanie o 10:00.",
    ),
    ("Spotkanie o 10:00.\nPozdrawiam\nJan Kowalski\n" + DISCLAIMER, "Spotkanie o 10:00."),
    # Nine lines of name, company, address and phones.
    (
        "Serwer padł.\n\nZ poważaniem\nJan Kowalski\nKierownik IT\nACME Sp. z o.o.\nul. Prosta 1\n"
        "00-001 Warszawa\ntel. +48 22 123 45 67\nkom. +48 601 123 456\nfax +48 22 123 45 68\nwww.acme.pl",
        "Serwer padł.",
    ),
    # The postscript below a signature is written to be read, even below its disclaimer.
    ("Tekst\n\nPozdrawiam | Regards\nJan\n\n" + DISCLAIMER + "\n\nPS. Sala 204.", "Tekst\n\nPS. Sala 204."),
    # Mail programs' own lines, with the link "<url>" of a text part or "(url)" of an HTML one.
    ("Będę o 10.\n\nSent from Outlook", "Będę o 10."),
    ("Będę o 10.\n\nSent from Outlook (http://aka.ms/weboutlook)", "Będę o 10."),
    ("Będę o 10.\n\nSent from Mail for Windows 10", "Będę o 10."),
    ("Będę o 10.\n\nSent from Yahoo Mail on Android", "Będę o 10."),
    ("Będę o 10.\n\nGet Outlook for iOS (https://aka.ms/o0ukef)", "Będę o 10."),
    ("Będę o 10.\n\nPobierz aplikację Outlook dla systemu Android (https://aka.ms/AAb9ysg)", "Będę o 10."),
    ("Będę o 10.\n\nWysłane z aplikacji Outlook", "Będę o 10."),
    ("Będę o 10.\n\nWysłane z aplikacji Outlook dla systemu iOS", "Będę o 10."),
]


@pytest.mark.parametrize(("body", "expected"), CUT, ids=[f"cut-{n}" for n in range(len(CUT))])
def test_the_sign_off_or_app_line_is_cut(body: str, expected: str) -> None:
    cleaned = clean_body(body)
    assert cleaned.text == expected
    assert SIGNATURE in cleaned.removed


# What the writer meant: each stays whole, and nothing is reported cut.
KEPT = [
    "Spotkanie o 10.\nPozdrawiam Jana od nas\nDo zobaczenia",
    "Spotkanie o 10.\n\nPozdrawiam Jana od nas",
    # A short mail whose only line is a sign-off: nothing above it, it is the message.
    "Pozdrawiam / Best regards",
    "Dziękuję i pozdrawiam",
    "Z poważaniem | Kind regards\nJan Kowalski",
    # A list ending the text, below a sign-off word or not.
    "Na jutro:\nZ poważaniem\n- Anna: slajdy\n- Piotr: budżet\n- Ewa: sala",
    "Lista zadań:\n1. Serwer\n2. Drukarka\n3. Router\n4. UPS",
    # A long paragraph right below a sign-off word, no name between: the person's text.
    "Kochana Aniu,\n\nBest wishes!\n\n" + DISCLAIMER,
    "Dzień dobry,\nPozdrawiam serdecznie\n" + DISCLAIMER,
    # Ten lines below "Pozdrawiam" with no contact details in them: text, not a signature.
    "Tekst\nPozdrawiam\n" + "\n".join(f"linia {n}" for n in range(10)),
    # "/" between a sign-off and anything but another one.
    "Tekst\n\nPozdrawiam / do jutra\nJan",
    # A mail program's name in a sentence.
    "Tekst\n\nSent from Outlook on my laptop, the invoice is attached",
    "Tekst\nWysłane z Outlooka do klienta.",
    "Tekst\n\nNowy link (https://meet.google.com/abc-defg-hij)",
]


@pytest.mark.parametrize("body", KEPT, ids=[f"kept-{n}" for n in range(len(KEPT))])
def test_what_the_writer_meant_stays(body: str) -> None:
    cleaned = clean_body(body)
    assert cleaned.text == body
    assert SIGNATURE not in cleaned.removed


def test_a_reply_of_nothing_but_the_company_signature_is_only_a_signature() -> None:
    # Outlook puts the signature above the quote of a Reply: with the disclaimer, nothing was written.
    assert only_signature("Pozdrawiam / Best regards\n" + COMPANY + "\n\n" + DISCLAIMER)
    assert not only_signature("Dzień dobry,\nPozdrawiam serdecznie\n" + DISCLAIMER)


async def test_through_smtp_the_phone_gets_one_gsm_part_not_eight_ucs2(tmp_path: Path) -> None:
    # The company's Outlook mail, through a real SMTP client into the daemon and out to the
    # built-in SMPP simulator: one part, GSM 7-bit (data_coding 0), the signature and disclaimer gone.
    cfg = two_way_config(tmp_path, "smpp", relay_port=free_port())
    raw = (DATA / "03_outlook_alt_pozdrawiam_comma_short_sig_disclaimer.eml").read_bytes()
    raw = raw.replace(b"demo@example.com", STAFF.encode())
    html = (DATA / "02_outlook_htmlonly_sig_disclaimer_plen.eml").read_bytes()
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(raw, [f"601123456@{DOMAIN}"])).error is None
        await gw.until(lambda: any(str(r["destination"]).endswith("601123456") for r in core.records))
        html = html.replace(b"demo@example.com", STAFF.encode())
        assert (await gw.send(html, [f"601123457@{DOMAIN}"])).error is None
        await gw.until(lambda: any(str(r["destination"]).endswith("601123457") for r in core.records))
    parts = {
        n: [r for r in core.records if str(r["destination"]).endswith(n)] for n in ("601123456", "601123457")
    }
    assert [(r["text"], r["data_coding"], r["concat"]) for r in parts["601123456"]] == [
        ("Spotkanie: Spotkanie o 10:00.", 0, None)
    ]
    # Polish letters: UCS-2, still one part.
    assert [(r["text"], r["concat"]) for r in parts["601123457"]] == [
        ("Spotkanie: Dzień dobry,\n\nSpotkanie przeniesione na 10:00 w sali 204.", None)
    ]
