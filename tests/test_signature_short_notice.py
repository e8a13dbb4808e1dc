"""A one- or two-line legal notice below a signature is a notice (R-1.3).

A company's server appends a short one too: "Treść tej wiadomości jest poufna i prawnie chroniona. ACME
Sp. z o.o., KRS 0000123456." (89 characters) or "This email is confidential. ACME Ltd, registered in
England No. 1234567.". A notice was one only at 100 characters or more and speaking to a wrong
recipient, so such a line stayed, and the signature above it with it: "Dostawa jutro o 10:00, rampa 3."
went out in 4 UCS-2 parts instead of 1, and a subject-only alert ("Awaria zasilania w serwerowni B")
with its body of Outlook's signature and that line in 3 UCS-2 parts, its subject cut. Now a short
paragraph that says the message is confidential, with the message named or the company's register
beside it, asking nothing, is a notice where it ends the text; a person's own sentence with such
words, or one above more of their text, stays. Under a subject such a line counts as the whole body's
notice only below a signature block: "Hasło VPN" over "Treść poufna i prawnie chroniona: hasło Xk7pq2,
…" went out as its subject alone, its writer told a "signature" was left out. Above a forward or a
quote such a line alone still goes: the forwarded text is sent, a Reply with nothing else holds no new text.

At `clean_body`, and through a real SMTP client into the running daemon and out to its built-in SMPP
simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.conversations.answers import no_new_text
from gateway.smtp.intake import read_mail
from gateway.smtp.notices import NOTICE as NOTICE_LABEL
from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.conftest import DOMAIN, free_port, running_gateway
from tests.test_intake import mail
from tests.test_signatures_footer_text import parts_got
from tests.test_two_way import two_way_config

SENDER = "Jan Kowalski <jan.kowalski@acme.example>"
TEXT = "Dostawa jutro o 10:00, rampa 3."
SIG = "Jan Kowalski\nKierownik Logistyki\nACME Sp. z o.o.\ntel. +48 601 222 333\nwww.acme.pl"
PL = "Treść tej wiadomości jest poufna i prawnie chroniona. ACME Sp. z o.o., KRS 0000123456."
EN = "This email is confidential. ACME Ltd, registered in England No. 1234567."

CUT = [
    f"{TEXT}\n\n{SIG}\n\n{PL}",
    f"{TEXT}\n\n{SIG}\n\n{EN}",
    f"{TEXT}\n\n{SIG}\n{PL}",
    f"{TEXT}\n\n{PL}",
    f"{TEXT}\n\n{SIG}\n\n{PL}\n\nwww.acme.pl",  # a footer below it goes too
]


@pytest.mark.parametrize("body", CUT, ids=[f"cut-{n}" for n in range(len(CUT))])
def test_a_short_notice_and_the_signature_above_it_go(body: str) -> None:
    cleaned = clean_body(body, sender=SENDER)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (TEXT, True)


KEPT = [
    # A person's own sentences: they ask, or more of their text follows.
    f"{TEXT}\n\nTa wiadomość jest poufna i prawnie chroniona, proszę jej nie przekazywać.",
    f"{TEXT}\n\nTreść tej wiadomości jest poufna i prawnie chroniona.\n\nKierowca dzwoni o 9:00.",
    f"{TEXT}\n\nCzy ta wiadomość jest poufna i prawnie chroniona?",
    # Nothing of the person's above it.
    PL,
]


@pytest.mark.parametrize("body", KEPT, ids=[f"kept-{n}" for n in range(len(KEPT))])
def test_what_the_person_wrote_stays(body: str) -> None:
    assert clean_body(body, sender=SENDER).text == body


# A person's one line under a subject, with a notice's words in it: nothing stands above it.
SECRET = "Treść poufna i prawnie chroniona: hasło Xk7pq2, zmień je po zalogowaniu."
LONG = (
    "Treść tej wiadomości jest poufna i przeznaczona wyłącznie dla adresata. Jeśli otrzymali Państwo tę"
    " wiadomość omyłkowo, prosimy o powiadomienie nadawcy i usunięcie jej."
)


def test_under_a_subject_a_persons_one_line_stays_a_notice_below_a_signature_goes() -> None:
    alone = read_mail(mail(SECRET, subject="Hasło VPN"))
    assert (alone.text, alone.removed) == (f"Hasło VPN: {SECRET}", [])
    from_jan = b"From: " + SENDER.encode()
    signed = read_mail(
        mail(f"{SIG}\n\n{PL}", subject="Awaria").replace(b"From: Jan <jan@example.com>", from_jan)
    )
    assert (signed.text, signed.removed) == ("Awaria", [SIGNATURE])
    # A long notice alone under a subject goes, and is named for what it is.
    notice = read_mail(mail(LONG, subject="Awaria"))
    assert (notice.text, notice.removed) == ("Awaria", [NOTICE_LABEL])


# Above a forward or a quote a short notice alone is still the server's, as before the rule above.
ONE_LINE = "Treść poufna i prawnie chroniona, przeznaczona wyłącznie dla adresata tej wiadomości."
FORWARDED = "Serwer nie odpowiada od 9:40, proszę o pilny kontakt."


def test_a_short_notice_alone_above_a_forward_or_a_quote_is_no_text_of_the_persons() -> None:
    forward = (
        f"{ONE_LINE}\n\n-----Original Message-----\nFrom: Klient <k@x.pl>\n"
        "Sent: Monday, December 7, 2026 10:00 AM\nTo: Jan <jan@example.com>\nSubject: Awaria\n\n"
        f"{FORWARDED}\n"
    )
    assert read_mail(mail(forward, subject="FW: Awaria")).text == f"Awaria: {FORWARDED}"
    reply = read_mail(
        mail(
            f"{ONE_LINE}\n\nW dniu 7.12.2026 o 10:00 SMS +48601123456 pisze:\n> Serwer nie odpowiada.\n",
            subject="RE: Awaria serwera",
            headers="In-Reply-To: <x1@sms.example.com>\n",
        )
    )
    assert no_new_text(reply, ("sms.example.com",))


def html(body: str) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: @@RCPT@@\r\nSubject: @@SUBJECT@@\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<html><body>{body}"
        "</body></html>\r\n"
    ).encode()


TABLE = (
    "<table><tr><td><img src='cid:logo'></td><td><b>Jan Kowalski</b><br>Kierownik Logistyki<br>"
    "ACME Sp. z o.o.<br>tel. +48 601 222 333</td></tr></table>"
)
NOTICE = f"<p style='font-size:8pt'>{PL}</p>"


async def test_through_smtp_the_phone_gets_the_text_or_the_subject_alone(tmp_path: Path) -> None:
    mails = [
        ("Info", f"<p>{TEXT}</p><p>&nbsp;</p>{TABLE}{NOTICE}"),
        ("Awaria zasilania w serwerowni B", f"<p>&nbsp;</p>{TABLE}{NOTICE}"),
        ("Hasło VPN", f"<p>{SECRET}</p>"),
    ]
    numbers = ["601123520", "601123521", "601123522"]
    async with running_gateway(two_way_config(tmp_path, "smpp", relay_port=free_port())) as gw:
        for number, (subject, body) in zip(numbers, mails, strict=True):
            rcpt = f"{number}@{DOMAIN}"
            raw = html(body).replace(b"@@RCPT@@", rcpt.encode()).replace(b"@@SUBJECT@@", subject.encode())
            assert (await gw.send(raw, [rcpt])).error is None
        got = await parts_got(gw, numbers)
    assert ["".join(str(r["text"]) for r in parts) for parts in got] == [
        f"Info: {TEXT}",
        "Awaria zasilania w serwerowni B",
        f"Hasło VPN: {SECRET}",
    ]
    assert [len(parts) for parts in got][:2] == [1, 1]
