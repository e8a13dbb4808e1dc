"""The confirmation said "subject cut to 30 characters" for a subject "Uwaga:" that was not cut: its
trailing colon goes before the separator (": "), and that was taken for a cut. Past the limit by
that colon alone ("x" * 30 + ":") it was said cut too, though every letter was sent. The note is
given only when more than the trailing punctuation went.

At read_mail, as tests/test_intake.py reads mails, and through a running daemon: a real SMTP client
to its listener, the confirmation at a real SMTP sink.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.intake import read_mail
from tests.conftest import DOMAIN, mail
from tests.test_cut_from import body_of, confirming
from tests.test_intake import mail as raw_mail

CUT = "subject cut to 30 characters"


@pytest.mark.parametrize(
    ("subject", "text"),
    [
        ("Uwaga:", "Uwaga: body"),
        ("Pilne -", "Pilne: body"),
        ("Serwer padł; ", "Serwer padł: body"),
        ("x" * 29 + ":", "x" * 29 + ": body"),  # 30 characters: at the limit, not past it
    ],
)
def test_a_subject_that_only_loses_its_trailing_punctuation_is_not_said_cut(subject: str, text: str) -> None:
    m = read_mail(raw_mail("body", subject=subject))
    assert (m.text, CUT in m.removed) == (text, False)


def test_a_subject_past_the_limit_is_still_said_cut() -> None:
    # Past the limit by its trailing colon alone: every letter is sent, so nothing is said cut.
    m = read_mail(raw_mail("body", subject="x" * 30 + ":"))
    assert (m.text, CUT in m.removed) == ("x" * 30 + ": body", False)
    m = read_mail(raw_mail("body", subject="x" * 31 + ":"))
    assert (m.text, CUT in m.removed) == ("x" * 30 + ": body", True)
    m = read_mail(raw_mail("body", subject="Awaria serwera w serwerowni nr 2: pilne"))
    assert (m.text, CUT in m.removed) == ("Awaria serwera w serwerowni nr: body", True)


async def test_the_confirmation_does_not_say_an_uncut_subject_was_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with confirming(tmp_path, capsys) as (gw, sink):
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", "Serwer stoi.", subject="Uwaga:"))).error is None
        await gw.until(lambda: len(core.records) >= 1)
        await sink.wait(1)
        assert core.records[0]["text"] == "Uwaga: Serwer stoi."
        confirmation = body_of(sink.messages[0][2])
        assert "1 SMS part(s)" in confirmation, confirmation
        assert "subject cut" not in confirmation, confirmation
