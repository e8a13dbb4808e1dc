"""The note of a cut subject tells how long the subject went out (R-1.3): a number in groups that opens
it goes whole past the limit (an account number, 32 characters against the 30 of the limit), and
the sender was told "subject cut to 30 characters" of a subject that went out with 32. Where the cut
keeps no more than the limit the note names the limit, as before.

At read_mail, and through a running daemon: a real SMTP client to its listener, the confirmation at a
real SMTP sink.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.intake import read_mail
from tests.conftest import DOMAIN, mail
from tests.test_cut_from import body_of, confirming
from tests.test_intake import mail as raw_mail

ACCOUNT = "61 1090 1014 0000 0712 1981 2874"  # 32 characters: it goes whole past the 30 of the limit
AT_LIMIT = "subject cut to 30 characters"


@pytest.mark.parametrize(
    ("subject", "sent", "note"),
    [
        (f"{ACCOUNT} przelew dziś", ACCOUNT, "subject cut to 32 characters"),
        (f"+48 601 234 567 {'pilne ' * 6}", "+48 601 234 567 pilne pilne", AT_LIMIT),
        ("Awaria serwera w serwerowni nr 2: pilne", "Awaria serwera w serwerowni nr", AT_LIMIT),
    ],
)
def test_the_note_says_how_long_the_subject_went_out(subject: str, sent: str, note: str) -> None:
    m = read_mail(raw_mail("treść", subject=subject))
    cut = [r for r in m.removed if r.startswith("subject cut")]
    assert (m.text, cut) == (f"{sent}: treść", [note])


async def test_the_confirmation_says_the_length_that_went_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with confirming(tmp_path, capsys) as (gw, sink):
        core = gw.daemon.simulator.core
        sent = await gw.send(mail(f"601123456@{DOMAIN}", "Proszę o przelew.", subject=f"{ACCOUNT} pilne"))
        assert sent.error is None
        await gw.until(lambda: len(core.records) >= 1)
        await sink.wait(1)
        assert "".join(r["text"] for r in core.records) == f"{ACCOUNT}: Proszę o przelew."
        confirmation = body_of(sink.messages[0][2])
        assert "subject cut to 32 characters" in confirmation, confirmation
        assert "cut to 30" not in confirmation, confirmation
