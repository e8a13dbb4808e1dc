"""`smsgw premium remove` ends a service's password, not the answers its client owes the phones that
already paid (R-4.5): the SMS it received while it existed are answered as before, within the reply
window and by the same rules; `remove` says how many. A confirmation of a removed service whose
password was added again does not tell the client that the service in use now was removed.

Against real peers, as tests/test_premium_answer_rules.py.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from tests.test_premium_answer_rules import DAY, premium
from tests.test_premium_loop import CLIENT, reply_to, smtp
from tests.test_two_way import parsed


async def test_the_sms_a_removed_service_received_are_still_answered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with premium(tmp_path) as w:
        vote = await w.vote()
        capsys.readouterr()
        await w.cli("premium", "remove", "KP123")
        assert (
            "its client may still answer the 1 SMS mailed to it in the reply window"
            in capsys.readouterr().out
        )
        assert (await smtp(w.gw.port, *reply_to(vote, "Dziekujemy!"))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert (w.sent()[0]["text"], str(w.sent()[0]["source"])) == ("Dziekujemy!", "7355")
        # The same rules as before the removal: one free answer, and none past the window.
        again = await smtp(w.gw.port, *reply_to(vote, "and again"))
        assert isinstance(again.error, smtplib.SMTPDataError) and again.error.smtp_code == 550


async def test_the_window_still_bounds_the_answers_of_a_removed_service(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        vote = await w.vote()
        await w.cli("premium", "remove", "KP123")
        w.skew[0] = 8 * DAY  # past the 7 days of [replies] window_days
        refused = await smtp(w.gw.port, *reply_to(vote, "Dziekujemy!"))
        assert isinstance(refused.error, smtplib.SMTPDataError)
        assert "older than 7 days" in refused.error.smtp_error.decode()
        assert w.sent() == []


async def test_an_old_confirmation_does_not_call_the_live_service_removed(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        first = parsed(w.sink.messages[0][2])  # the confirmation of the first KP123, used already
        await w.cli("premium", "remove", "KP123")
        await w.cli("premium", "add", "KP123", "--account", "acme", "--email", CLIENT)
        old = await smtp(w.gw.port, *reply_to(first, "yes"))
        assert isinstance(old.error, smtplib.SMTPDataError)
        said = old.error.smtp_error.decode()
        assert "earlier premium service KP123, removed since" in said and "was removed" not in said


async def test_remove_counts_only_the_sms_whose_free_answer_is_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two votes, one answered already: its client may answer one more, not two (the count took
    every SMS mailed in the window, answered or not)."""
    async with premium(tmp_path) as w:
        first = await w.vote()
        await w.vote("KP123 vote B", phone="+48601999777")
        assert (await smtp(w.gw.port, *reply_to(first, "Dziekujemy!"))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        capsys.readouterr()
        await w.cli("premium", "remove", "KP123")
        said = capsys.readouterr().out
    assert "its client may still answer the 1 SMS mailed to it in the reply window" in said, said
