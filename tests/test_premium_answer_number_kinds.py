"""A client's free answer goes only to the kinds of number the gateway sends SMS to at all (R-4.5,
`[gateway] number_types`).

A vote from a premium-rate, toll-free or satellite number (a spoofed one: SMS pumping) was answered
at the operator's cost, though the relay refuses such numbers to everyone. Against real peers, as
tests/test_premium_answer_rules.py: the daemon with its built-in simulator, the vote's mail read at a
real SMTP sink and answered by a real SMTP client.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.polish import KINDS_PL, note_words
from gateway.premium import votemail
from gateway.smtp.addressing import GLOBAL, NUMBER_KINDS, kind_words
from tests.conftest import DOMAIN
from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import CLIENT, smtp


@pytest.mark.parametrize(
    ("phone", "words"),
    [
        ("+48701234567", "premium-rate"),
        ("+48800123456", "toll-free"),
        ("+881612345678", "satellite and international-network"),
    ],
)
async def test_no_answer_goes_to_a_kind_of_number_the_gateway_does_not_serve(
    tmp_path: Path, phone: str, words: str
) -> None:
    async with premium(tmp_path) as w:
        seen = len(w.sink.messages)
        vote = await w.vote(phone=phone)
        # The client's mail offers no answer address and says why; nothing answers it automatically.
        assert vote["Reply-To"] is None and vote["Auto-Submitted"] == "auto-generated"
        note = " ".join(vote.get_content().split())  # as one line, however it was wrapped
        assert f"is a {words} number, which this gateway sends no SMS to" in note
        assert not w.sink.messages[seen][0].startswith("premium-")  # nor is its envelope sender one
        # An answer to its address all the same (one known from a mail of an earlier version).
        token = w.gw.store.db.conn.execute("SELECT token FROM premium_mo").fetchone()[0]
        answer = EmailMessage()
        answer["From"], answer["Subject"] = CLIENT, f"Re: {vote['Subject']}"
        answer.set_content("Thanks for your vote")
        result = await smtp(w.gw.port, answer.as_bytes(), f"premium-{token}@{DOMAIN}")
        assert isinstance(result.error, smtplib.SMTPDataError)  # type: ignore[attr-defined]
        assert result.error.smtp_code == 550  # type: ignore[attr-defined]
        said = result.error.smtp_error.decode()  # type: ignore[attr-defined]
        assert said.startswith("5.1.1") and f"{words} numbers are not served by this gateway" in said
        assert w.answers() == [("refused", f"{words} numbers are not served ([gateway] number_types)")]
        db = w.gw.store.db.conn
        assert db.execute("SELECT answers FROM premium_mo").fetchone() == (0,)  # nothing used up
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (0,) and w.sent() == []


def test_the_note_is_said_in_polish_for_a_polish_gateway() -> None:
    note = votemail.UNSERVED.format("+48 701 234 567", "premium-rate")
    assert note_words(note, "pl") == (
        "Na numer +48 701 234 567 (o podwyższonej opłacie) bramka nie wysyła SMS-ów:"
        " na ten SMS nie można odpowiedzieć"
    )
    said = note_words(votemail.UNSERVED.format("+881 612 345 678", kind_words(GLOBAL)), "pl")
    assert "(satelitarny lub sieci międzynarodowej)" in said
    assert "(bezpłatny, infolinia)" in note_words(votemail.UNSERVED.format("+800", "toll-free"), "pl")


def test_every_kind_of_number_has_a_polish_word() -> None:
    assert sorted(KINDS_PL) == sorted(kind_words(kind) for kind in NUMBER_KINDS)
