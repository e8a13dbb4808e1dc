"""Support sees what became of a client's answers (R-4.5): a refused one (a sender off the reply list,
no free answer left, the window passed, the account suspended, the identical-text rule) was told
only to the client's mail server and kept in a table no command read. `smsgw premium answers`
lists them newest first, with the sender; the log line of a refusal names the sender.

Against real peers, as tests/test_premium_answer_rules.py: the answers are sent by a real SMTP
client to the running daemon, the listing is the CLI on its database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import CLIENT, PHONE, reply_to, smtp

EVE = "eve@evil.example"


async def test_refused_and_sent_answers_are_listed_newest_first_with_their_sender(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with premium(tmp_path) as w:
            vote = await w.vote()
            answer, to = reply_to(vote, "free SMS for eve", sender=EVE)
            assert (await smtp(w.gw.port, answer, to, sender=EVE)).error is not None
            assert (await smtp(w.gw.port, *reply_to(vote, "Dziekujemy!"))).error is None
            await w.gw.until(lambda: len(w.sent()) == 1)
            capsys.readouterr()
            await w.cli("premium", "answers")
            listed = capsys.readouterr().out.splitlines()
            await w.cli("premium", "answers", "kp123", "--refused", "--since", "1d")
            refused = capsys.readouterr().out.splitlines()
            await w.cli("premium", "answers", "KP999")
            none = capsys.readouterr().out
    rows = [line for line in listed if "KP123" in line]
    assert len(rows) == 2
    assert CLIENT in rows[0] and PHONE in rows[0] and "7355" in rows[0] and " sent" in rows[0]
    assert EVE in rows[1] and PHONE in rows[1] and "refused: sender not on the reply ACL" in rows[1]
    assert [line for line in refused if "KP123" in line] == [rows[1]]
    assert none.strip().endswith("no answers to premium SMS of KP999")
    said = [e for e in logs if e["event"] == "premium.answer_refused"]
    assert [(e["sender"], e["reason"]) for e in said] == [(EVE, "sender not on the reply ACL")]
