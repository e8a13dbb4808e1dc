"""What the sender is told of a cut subject, and what the phone reads of a cancelled meeting, say what
happened (R-1.3).

A subject whose cut left out a number that did not fit ("Przelew na 61 1090 1014 0000 0712 1981 2874
dziś" went out as "Przelew na", 10 characters: a number goes whole or not at all) was noted "subject
cut to 30 characters". The note names the length sent now when a number was left out, as it does
when a number opening the subject went past the limit; a cut at a word keeps naming the limit.

An Outlook cancellation's note got the cancelled meeting's start appended as its last line, where
it read as the new time ("Przenosimy na piątek 11.12 godz. 9:00.\\n2026-12-09 10:00"). The start now
stands right after the subject that says the meeting was cancelled, and is left out when no subject
is sent to say so.

At read_mail, and through a running daemon: a real SMTP client to its listener, the phone's SMS at
its built-in simulator, the confirmation at a real SMTP sink.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.intake import IntakeOptions, read_mail
from tests.conftest import DOMAIN, mail
from tests.test_cut_from import body_of, confirming
from tests.test_intake import mail as raw_mail
from tests.test_meeting_cancellation_note import SUBJECT, outlook
from tests.test_signatures_footer_text import parts_got

ACCOUNT = "61 1090 1014 0000 0712 1981 2874"


WORD_CUT = "Re: running server as root (Was: Re: PUT method)"  # a cut at a word names the limit, as before


@pytest.mark.parametrize(
    ("subject", "sent", "note"),
    [
        (f"Przelew na {ACCOUNT} dziś", "Przelew na", "subject cut to 10 characters"),
        ("Zadzwoń do klienta pod +48 601 234 567", "Zadzwoń do klienta pod", "subject cut to 22 characters"),
        (WORD_CUT, "running server as root (Was", "subject cut to 30 characters"),
    ],
)
def test_the_note_names_the_length_sent_when_a_number_was_left_out(
    subject: str, sent: str, note: str
) -> None:
    m = read_mail(raw_mail("treść", subject=subject))
    assert (m.text, [r for r in m.removed if r.startswith("subject cut")]) == (f"{sent}: treść", [note])


NOTE = "Spotkanie odwołane, przenosimy na piątek 11.12 godz. 9:00."


def test_the_cancelled_start_follows_the_subject_not_the_note() -> None:
    assert read_mail(outlook(NOTE)).text == f"{SUBJECT}: 2026-12-08 10:00\n{NOTE}"
    # No subject sent: nothing would say the time is the cancelled one.
    assert read_mail(outlook(NOTE), IntakeOptions(subject_max=0)).text == NOTE


async def test_through_smtp_the_confirmation_and_the_phone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with confirming(tmp_path, capsys) as (gw, sink):
        core = gw.daemon.simulator.core
        rcpt = f"601123456@{DOMAIN}"
        assert (
            await gw.send(mail(rcpt, "Proszę o przelew.", subject=f"Przelew na {ACCOUNT} dziś"))
        ).error is None
        await gw.until(lambda: len(core.records) >= 1)
        await sink.wait(1)
        assert "".join(str(r["text"]) for r in core.records) == "Przelew na: Proszę o przelew."
        confirmation = body_of(sink.messages[0][2])
        assert "subject cut to 10 characters" in confirmation, confirmation
        other = f"601123457@{DOMAIN}"
        assert (await gw.send(outlook(NOTE, to=other), [other])).error is None
        got = await parts_got(gw, ["601123457"])
        assert "".join(str(r["text"]) for r in got[0]) == f"{SUBJECT}: 2026-12-08 10:00\n{NOTE}"
