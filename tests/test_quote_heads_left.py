"""What headed a cut quote and was left as the SMS's last line (R-1.3):
- reply attributions with the name first and the date after the verb ("Anna Nowak <anna@firma.pl>
  schrieb am Mo., 7. Dez. 2026, 10:49:", "Anna Nowak wrote on 07.12.2026 10:49:"), as K-9, FairEmail
  and some of Gmail's apps write them: the `>` quote went, its header stayed;
- a forwarded message's rule in words no table listed ("---------- Wiadomość przekazana dalej
  ---------"): the header block and the message below it went, the rule stayed;
- Outlook's "________________________________" directly above a `>` quote (Outlook set to mark the
  original with "> "): the quote went, the rule stayed.
Each negative twin keeps what a person wrote. Through a running daemon whose built-in simulator
records what each phone got."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.quoteheads import FORWARDED, separator
from gateway.smtp.textclean import clean_body
from tests.test_intake import mail
from tests.test_subject_cut_numbers import phone_texts

QUOTE = "> Czy spotkanie o 12? Sala 3.\n"
FORWARD_HEAD = "Od: Anna Nowak <anna@firma.pl>\nDate: pon., 7 gru 2026 o 10:49\n"
FORWARD_HEAD += "Subject: Sp\nTo: Jan <jan@acme.pl>\n\nO 12?\n"
RULE = "_" * 32
ATTRIBUTIONS = [
    "Anna Nowak <anna@firma.pl> schrieb am Mo., 7. Dez. 2026, 10:49:",
    "Anna Nowak <anna@firma.pl> wrote on Mon, 7 Dec 2026 at 10:49:",
    "Anna Nowak wrote on 07.12.2026 10:49:",
    "Anna Nowak napisał(a) dnia 07.12.2026 o 10:49:",
]
# What a person writes stays.
KEPT = [
    "Tak.\n\nKlient wrote on Monday at 10:00:\nCzy spotkanie o 12?",
    "Plan:\n\n----- Agenda -----\n1. Budżet",
    "Tak.\n\n--- Wiadomość od klienta ---\nProszę o fakturę.",
    f"Tak, o 12.\n\n{RULE}\nTabela cen",
]
# (body, what the phone gets after "Sp: ")
CASES = [
    *((f"Tak, o 12.\n\n{a}\n{QUOTE}", "Tak, o 12.") for a in ATTRIBUTIONS),
    # The quote of an HTML reply is gone before the text is read: the attribution is last.
    (f"Tak, o 12.\n\n{ATTRIBUTIONS[2]}\n", "Tak, o 12."),
    (f"Prześlij.\n\n---------- Wiadomość przekazana dalej ---------\n{FORWARD_HEAD}", "Prześlij."),
    (f"Prześlij.\n\n-------- Weitergeleitete E-Mail --------\n{FORWARD_HEAD}", "Prześlij."),
    (f"Tak, o 12.\n\n{RULE}\n{QUOTE}", "Tak, o 12."),
    *((body, body) for body in KEPT),
]


@pytest.mark.parametrize(("body", "sent"), CASES)
def test_the_header_of_a_cut_quote_goes_with_it(body: str, sent: str) -> None:
    assert clean_body(body).text == sent


@pytest.mark.parametrize(
    "line",
    [
        "---------- Wiadomość przekazana dalej ---------",
        "---- Przekazany mail ----",
        "-- Forwarded e-mail --",
    ],
)
def test_a_forwarding_rule_in_other_words_is_a_separator(line: str) -> None:
    assert separator(line) == FORWARDED


async def test_through_smtp_the_phone_gets_no_header_of_a_cut_quote(tmp_path: Path) -> None:
    got = await phone_texts(tmp_path, [mail(body, subject="Re: Sp") for body, _ in CASES])
    assert got == [f"Sp: {sent}" for _, sent in CASES]
