"""The public writes a password with a gap (`KP 123`, `KP-123`, `kp. 123`): the phone paid, so the
vote goes to the client whose live service the password names (R-4.2, R-4.4); a gap that names no
service, or more than three characters after it, still goes to the fallback address.

Against real peers, as tests/test_premium_answer_rules.py: the daemon with its simulator, the mail
read at a real SMTP sink.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smsc.simulator.control import send_command
from tests.test_premium_answer_rules import premium
from tests.test_two_way import parsed


@pytest.mark.parametrize(
    "text",
    [
        "KP 123 vote A",
        "KP-123 vote A",
        "kp. 123 vote A",
        " Kp_ :123: vote A",
        # Polish typography's no-break spaces, as ads print a password and the public copies it.
        "KP\u00a0123 vote A",
        "KP\u202f123\u00a0vote A",
        "KP\u2007123 vote A",
        # A dash of typesetting or of a phone's keyboard: the non-breaking hyphen, the en dash, minus.
        "KP\u2011123 vote A",
        "KP\u2013123 vote A",
        "KP\u2212123\u2014vote A",
        # Invisible format characters a copy keeps: a soft hyphen, a zero-width space, before the
        # message too (the client was mailed `\u200bvote A`).
        "KP\u00ad123 vote A",
        "KP\u200b123 vote A",
        "KP123\u200bvote A",
        "KP123 \u2060vote A",
    ],
)
async def test_a_password_written_with_a_gap_reaches_its_client(tmp_path: Path, text: str) -> None:
    async with premium(tmp_path) as w:
        vote = await w.vote(text)  # the mail to the client, subject KP123 · 7355 · the phone
        assert vote.get_content().startswith("vote A\n")
        row = w.gw.store.db.conn.execute("SELECT password, state, commission FROM premium_mo").fetchone()
        assert row[:2] == ("KP123", "mailed") and row[2] > 0


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("KP 1234 vote", "does not start with a premium password"),  # four characters: no password
        ("KP 999 vote", "does not start with a premium password"),  # no such service
    ],
)
async def test_a_gap_naming_no_service_goes_to_the_fallback(tmp_path: Path, text: str, why: str) -> None:
    async with premium(tmp_path) as w:
        seen = len(w.sink.messages)
        mo = {"op": "mo", "source": "+48601123456", "destination": "7355", "text": text}
        assert (await send_command("127.0.0.1", w.gw.daemon.simulator.control_port, mo))["ok"]
        await w.sink.wait(seen + 1)
        rcpt, raw = w.sink.messages[seen][1], w.sink.messages[seen][2]
        assert rcpt == ["ops@example.com"]
        assert text in parsed(raw).get_content()
        row = w.gw.store.db.conn.execute("SELECT service_id, state, note FROM premium_mo").fetchone()
        assert row[0] is None and row[1] == "fallback" and why in row[2]


async def test_a_gap_for_a_service_on_another_number_goes_to_the_fallback(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        await w.cli("premium", "set", "KP123", "--number", "7155")
        seen = len(w.sink.messages)
        mo = {"op": "mo", "source": "+48601123456", "destination": "7355", "text": "KP 123 vote"}
        assert (await send_command("127.0.0.1", w.gw.daemon.simulator.control_port, mo))["ok"]
        await w.sink.wait(seen + 1)
        assert w.sink.messages[seen][1] == ["ops@example.com"]
