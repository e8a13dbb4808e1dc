"""`clean_body` takes a body of one plain line past its cutting rules: the result is every rule's.

Most short mails are one line of text, which none of the twelve rules changes; a few looks at the
line (`textclean._one_plain_line`) tell such a line from one a rule could cut. The tests compare
the shortcut with the rules run in full over the corpus's bodies, every string of the test suite
(whole and each of its lines alone, as one-line bodies) and generated lines built from what the
rules look for.
"""

from __future__ import annotations

import ast
import dataclasses
import email
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smtp import textclean
from gateway.smtp.textclean import Cleaned, clean_body
from tests.test_golden import CORPUS

TESTS = Path(__file__).resolve().parent
# The ways a mail is cleaned: the account's end marker or none, a cut-from phrase, an invitation.
OPTIONS: tuple[tuple[str | None, tuple[str, ...], bool], ...] = (
    ("END", (), False),
    (None, (), False),
    ("KONIEC", (), True),
    ("END", ("Poufne",), False),
)


def by_every_rule(text: str, end_marker: str | None, cut_from: tuple[str, ...], invitation: bool) -> Cleaned:
    """`clean_body` with each of its rules run, as before the shortcut."""
    with patch.object(textclean, "_one_plain_line", lambda *_: False):
        return clean_body(text, end_marker, cut_from, invitation=invitation)


def check(text: str) -> None:
    for end_marker, cut_from, invitation in OPTIONS:
        fast = clean_body(text, end_marker, cut_from, invitation=invitation)
        full = by_every_rule(text, end_marker, cut_from, invitation)
        assert fast == full, repr(text[:120])
        # The shortcut's record is filled by plain stores (`textclean._plain`): the same record.
        assert type(fast) is Cleaned and repr(fast) == repr(full) and hash(fast) == hash(full)
        assert [type(getattr(fast, f.name)) for f in dataclasses.fields(Cleaned)] == [
            type(getattr(full, f.name)) for f in dataclasses.fields(Cleaned)
        ]
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.text = "changed"  # type: ignore[misc]


def _parts(msg: Message) -> Iterator[str]:
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                yield payload.decode(part.get_content_charset() or "utf-8", "replace")


def corpus_texts() -> list[str]:
    texts = [p.read_text("utf-8", "replace") for p in sorted((CORPUS / "bodies").glob("*.txt"))]
    for path in sorted(CORPUS.glob("*.eml")):
        texts += _parts(email.message_from_bytes(path.read_bytes()))
    return texts


def suite_texts() -> list[str]:
    """Every string constant of the test suite: the bodies, lines and phrases the rules are tested on."""
    found: dict[str, None] = {}
    for path in sorted(TESTS.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 5000:
                found[node.value] = None
    return list(found)


def one_line_bodies(texts: list[str]) -> list[str]:
    """Each text whole, and each of its lines alone, bare and with blank lines and CRLF around it."""
    out: dict[str, None] = {}
    for text in texts:
        out[text] = None
        for line in text.splitlines():
            for body in (line, f"{line}\n", f"\n\n  {line}  \r\n\n"):
                out[body] = None
    return list(out)


def test_corpus_bodies_and_their_lines() -> None:
    texts = corpus_texts()
    assert len(texts) > 30
    for text in one_line_bodies(texts):
        check(text)


def test_the_suites_texts_and_their_lines() -> None:
    texts = one_line_bodies(suite_texts())
    assert len(texts) > 5000
    for text in texts:
        check(text)


LINES = [
    "Spotkanie o 10:00, sala 204.",
    "Benchmark message number 7. The meeting is moved to 10:00, room 4.",
    "Sent from my iPhone",
    "Wysłane z mojego iPhone'a",
    "-- Greg",
    "--Bob",
    "-----Original Message-----",
    "Begin forwarded message:",
    "Początek przekazywanej wiadomości:",
    "On Mon, Dec 5, 2026 at 10:00 Jan <jan@acme.example> wrote:",
    "Dnia 5 grudnia napisał:",
    "When: 5 December 2026 10:00-11:00 (UTC+01:00) Belgrade, Bratislava.",
    "Kiedy: jutro",
    "From: Jan Kowalski <jan@acme.example>",
    "> cytat",
    ">35 stopni",
    "[cid:image001.png@01D2]",
    "cid:image001.png",
    "image: logo",
    "Zobacz [image: wykres.png] i daj znać",
    "spotkania<https://teams.microsoft.com/l/meetup-join/1>",
    "biuro@acme.pl<mailto:biuro@acme.pl>",
    "Microsoft Teams meeting",
    "Join Zoom Meeting",
    "________________________________",
    "[Not matched: no SMS was sent to +48 601 123 456]",
    "-----BEGIN PGP SIGNED MESSAGE-----",
    "x -----BEGIN PGP SIGNED MESSAGE----- y",
    "END",
    "see END",
    "Poufne: treść",
    "{EMAILSIGNATURE}",
    "~Danielle",
    "Pozdrawiam",
    "*From:* Jan",
    "\u200c",
    "\u3164",
    "a\tb  c\fd\ve",
    "",
    "   ",
    # Around the line and at its ends: whitespace `strip` takes and `_SPACES` does not, a first
    # character outside ASCII's graphic ones (visible or not), controls.
    "\u3000 Serwer  padł \u3000",
    "\t\tSerwer\t padł\t",
    "\x1cSerwer\x1f",
    "\x85ż\u2028",
    "Żółw  x",
    "\u00a0 a",
    "\u200b\u200c x",
    "\x00 x",
    "\x7f",
    "\U0001f600  ok",
    "\ufe0f",
]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(LINES), min_size=0, max_size=4), st.sampled_from(["\n", "\r\n", "\r"]))
def test_generated_bodies(lines: list[str], end: str) -> None:
    check(end.join(lines))


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=st.sampled_from("Sent from my -_>[]<{}~*:ENDcid image\u200c\t .,\n"), max_size=40))
def test_generated_text(text: str) -> None:
    check(text)


@settings(max_examples=1500, deadline=None)
@given(
    st.text(max_size=30)
    | st.text(alphabet=st.sampled_from(" \t\f\v\r\n\x1c\x85\u2028\u3000\u00a0\u200bażA~!"), max_size=20)
)
def test_generated_whitespace_and_first_characters(text: str) -> None:
    check(text)


@pytest.mark.parametrize(
    "text",
    ["Benchmark message number 7. The meeting is moved to 10:00, room 4.\r\n", "\n  Serwer padł  \n\n"],
)
def test_a_plain_line_is_not_run_through_the_rules(text: str) -> None:
    with patch.object(textclean, "cut_signature", side_effect=AssertionError("a rule ran")):
        cleaned = clean_body(text)
    assert cleaned == by_every_rule(text, "END", (), False)
    assert cleaned.text == text.strip() and cleaned.removed == ()
