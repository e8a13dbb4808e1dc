"""`only_signature` looks at a body's first line before it cuts: the answer is the full cut's.

A body is all signature only when `cut_signature` (with a line written above it) takes its first
line, and each of its cuts that does starts at a signature, sign-off or "--Bob" line; or when it is
a company's notice with nothing of the person's above it (`notices.only_notices`). The tests
compare the shortcut with the cut alone over the corpus's bodies, the signature tests' texts and
generated bodies built from lines of every kind the cut reads.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smtp import signatureonly
from gateway.smtp.notices import only_notices
from gateway.smtp.signatures import cut_signature
from gateway.smtp.textclean import clean_body, only_signature
from tests.test_golden import CORPUS


def by_the_cut(text: str) -> bool:
    """`only_signature` as the cut alone answers it, a short sentence below the name signature too;
    or a notice with nothing of the person's above it, which the cut keeps (`notices.only_notices`)."""
    lines = text.split("\n")
    cut = cut_signature(["", "x", *lines], [], own=False)
    return bool(text.strip()) and (not any(line.strip() for line in cut[2:]) or only_notices(lines))


LINES = [
    "",
    "  ",
    "x",
    "Spotkanie o 10:00, sala 204.",
    "Pozdrawiam",
    "Pozdrawiam,",
    "  Pozdrawiam serdecznie  ",
    "Z poważaniem,",
    "Best regards, Jan Kowalski",
    "Pozdrawiam / Best regards",
    "Jan Kowalski",
    "Anna Nowak",
    "Kierownik działu IT",
    "tel. +48 22 123 45 67",
    "kom. 601 123 456",
    "www.acme.example",
    "jan@acme.example",
    "ul. Prosta 1, 00-001 Warszawa",
    "--",
    "-- ",
    "-- Greg",
    "--Bob",
    "---/dev/il",
    "~Danielle",
    "-- Sala 204",
    "-- Sala 101",
    "- mleko",
    "1. Serwer",
    "PS. Sala 204 zamiast 101.",
    "P.S.: jutro",
    "Sent from my iPhone",
    "Wysłane z mojego iPhone'a",
    "Get Outlook for iOS",
    "{EMAILSIGNATURE}",
    "Treść tej wiadomości jest poufna i przeznaczona wyłącznie dla adresata. " * 2,
    "Regards",
    "br",
    "Dzięki, pozdrawiam",
]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(LINES), min_size=0, max_size=12))
def test_generated_bodies(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert only_signature(text) == by_the_cut(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("Pozdraiwm -~\n.,/|BbRrS:x1 "), max_size=60))
def test_generated_text(text: str) -> None:
    assert only_signature(text) == by_the_cut(text)


def test_corpus_bodies_as_cleaned_and_as_written() -> None:
    bodies = [p.read_text("utf-8", "replace") for p in sorted((CORPUS / "bodies").glob("*.txt"))]
    assert len(bodies) > 10
    for body in bodies:
        for text in (body, clean_body(body).text, clean_body(body, None).text):
            assert only_signature(text) == by_the_cut(text), text[:80]
    for signed in ("Pozdrawiam\nAnna Nowak\ntel. 601 123 456", "-- \nJan", "--Bob", "  Z poważaniem,\n\nJan"):
        assert only_signature(signed) and by_the_cut(signed), signed


def test_the_cut_is_not_run_for_a_body_that_starts_with_text(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def counted(lines: list[str], removed: list[str], *, own: bool = True) -> list[str]:
        calls.append(1)
        return cut_signature(lines, removed, own=own)

    monkeypatch.setattr(signatureonly, "cut_signature", counted)
    assert not only_signature("Spotkanie o 10:00.\nPozdrawiam\nAnna")
    assert calls == []
    assert only_signature("Pozdrawiam\nAnna Nowak")
    assert calls == [1]
