"""A new mail's `>` lines are the person's text (R-1.3): only a reply or a forward quotes another.

"Progi rabatowe:\\n> 1000 zł - 5%\\n> 5000 zł - 10%" reached the phone as "Rabaty: Progi rabatowe:",
"Klient napisał:\\n> Towar uszkodzony, proszę o zwrot.\\nProszę oddzwonić do niego." as "Reklamacja:
Proszę oddzwonić do niego." and "Ścieżka:\\n> Plik > Opcje > Poczta" as "Ścieżka:": every `>` line
was taken for a quote, and an attribution-like line above one for its header, in a mail with no
In-Reply-To, no References and no "Re:" or "Fwd:" subject, which quotes no mail. Such a mail keeps
them as written, the ">" too: the phone shows what was quoted as the sender set it apart. A reply
still loses its quote.

At `clean_body` (`quoting`), and through a real SMTP client into the running daemon and out to its
built-in SMPP simulator: that needs intake to tell clean_body whether the mail quotes another.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.smtp.textclean import QUOTED, clean_body
from tests.conftest import DOMAIN, mail
from tests.test_signature_subject_only import SENDER, phone_got

BODIES = [
    "Progi rabatowe:\n> 1000 zł - 5%\n> 5000 zł - 10%",
    "Klient napisał:\n> Towar uszkodzony, proszę o zwrot.\nProszę oddzwonić do niego.",
    "Ścieżka:\n> Plik > Opcje > Poczta",
]
AS_REPLY = ["Progi rabatowe:", "Proszę oddzwonić do niego.", "Ścieżka:"]


@pytest.mark.parametrize(("body", "reply"), zip(BODIES, AS_REPLY, strict=True))
def test_a_new_mail_keeps_its_quote_lines(body: str, reply: str) -> None:
    assert (clean_body(body, quoting=False).text, clean_body(body, quoting=False).removed) == (body, ())
    assert (clean_body(body).text, QUOTED in clean_body(body).removed) == (reply, True)


# A reply whose headers a system dropped still quotes: a dated or addressed attribution above the
# quote, or nothing of the person's beside it.
LOST_HEADERS = [
    (
        "Tak.\n\nOn 5 Dec 2026, at 10:00, Anna Nowak <anna@example.com> wrote:\n\n"
        "> Czy potwierdza Pan termin?",
        "Tak.",
    ),
    ("Tak.\n\nW dniu 05.12.2026 o 10:00, Jan Kowalski pisze:\n\n> Czy potwierdza Pan termin?", "Tak."),
    ("> only the old message\n-- \nJan", ""),
]


@pytest.mark.parametrize(("body", "text"), LOST_HEADERS)
def test_a_reply_that_lost_its_headers_still_loses_its_quote(body: str, text: str) -> None:
    assert clean_body(body, quoting=False).text == text


def _sent(number: str, subject: str, body: str, **headers: str) -> EmailMessage:
    msg = mail(f"{number}@{DOMAIN}", body, subject, **headers)
    msg.replace_header("From", SENDER)
    return msg


async def test_through_smtp_a_new_mail_keeps_them_and_a_reply_does_not(tmp_path: Path) -> None:
    sent = [
        _sent("601123640", "Rabaty", BODIES[0]),
        _sent("601123641", "Reklamacja", BODIES[1]),
        _sent("601123642", "Menu", BODIES[2]),
        _sent("601123643", "Re: Rabaty", BODIES[0]),
        _sent("601123644", "Rabaty", BODIES[0], In_Reply_To="<a1@acme.pl>"),
        _sent("601123645", "Fwd: Rabaty", BODIES[0]),
    ]
    assert [text for text, _ in await phone_got(tmp_path, sent)] == [
        f"Rabaty: {BODIES[0]}",
        f"Reklamacja: {BODIES[1]}",
        f"Menu: {BODIES[2]}",
        "Rabaty: Progi rabatowe:",
        "Rabaty: Progi rabatowe:",
        "Rabaty: Progi rabatowe:",
    ]
