"""A line of dashes a person types (R-1.3): a signature under it goes, as under a blank line ("Podpiszę
jutro o 10:00.\n-----\nJan Kowalski\nACME Sp. z o.o.\ntel. 601 222 333" went whole, two parts); in a reply
a rule right above the `>` quote goes with the quote ("Tak, zgadzam się.\n-----" was what the phone got).
What a person writes below their own rule stays. Through the intake's reading of a whole mail."""

from __future__ import annotations

import pytest

from gateway.smtp.intake import read_mail
from gateway.smtp.textclean import collapse
from tests.test_intake import mail


def read(body: str, subject: str = "umowa", headers: str = "") -> str:
    raw = mail(body, subject=subject, headers=headers).replace(b"From: Jan <", b"From: Jan Kowalski <")
    return read_mail(raw).body


@pytest.mark.parametrize("rule", ["-----", "-" * 40])
@pytest.mark.parametrize(
    "signature",
    ["Jan Kowalski\nACME Sp. z o.o.\ntel. 601 222 333", "Pozdrawiam\nAnna Nowak\nACME Sp. z o.o."],
)
def test_a_signature_under_a_typed_rule_goes(rule: str, signature: str) -> None:
    assert read(f"Podpiszę jutro o 10:00.\n{rule}\n{signature}") == "Podpiszę jutro o 10:00."


@pytest.mark.parametrize("rule", ["-----", "_" * 12])
def test_a_rule_above_the_quote_of_a_reply_goes_with_it(rule: str) -> None:
    body = f"Tak, zgadzam się.\n{rule}\n> Czy zgadzasz się?"
    assert read(body, "Re: umowa", "In-Reply-To: <a1@acme.pl>\n") == "Tak, zgadzam się."


@pytest.mark.parametrize(
    "body",
    [
        "Cennik:\n----------\nKawa 5 zł\nHerbata 4 zł",
        "Progi rabatowe:\n-----\n> 1000 zł - 5%\n> 5000 zł - 10%",
        "Zmiana dyżuru:\n-----\nData: 14.12.2026\nOd: 8:00\nDo: 16:00\n\nProszę potwierdzić do jutra.",
        "Plan:\n-----\nJan Kowalski: sala 204\nAnna Nowak: sala 101",
    ],
)
def test_what_a_person_writes_under_their_rule_stays(body: str) -> None:
    assert read(body, "Plan") == collapse(body.split("\n"))
