"""Support sees what became of a client's answers (R-4.5): a refused one (a sender off the reply list,
no free answer left, the window passed, the account suspended, the identical-text rule) was told
only to the client's mail server and kept in a table no command read. `smsgw premium answers`
lists them newest first, with the sender; the log line of a refusal names the sender.

Against real peers, as tests/test_premium_answer_rules.py: the answers are sent by a real SMTP
client to the running daemon, the listing is the CLI on its database.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import structlog

from gateway.cli.main import main
from gateway.premium import handlers
from gateway.premium.repo import PremiumRepo
from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import CLIENT, PHONE, reply_to, smtp
from tests.test_two_way import parsed

EVE = "eve@evil.example"
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")


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
            unknown = await asyncio.to_thread(main, ["-c", str(w.config), "premium", "answers", "KP999"])
            none = capsys.readouterr()
    rows = [line for line in listed if "KP123" in line]
    assert len(rows) == 2
    assert CLIENT in rows[0] and PHONE in rows[0] and "7355" in rows[0] and " sent" in rows[0]
    assert EVE in rows[1] and PHONE in rows[1] and "refused: sender not on the reply ACL" in rows[1]
    assert [line for line in refused if "KP123" in line] == [rows[1]]
    # A service never added is said to be none (exit 1), not to have no answers.
    assert unknown == 1 and "smsgw: no premium service KP999\n" in none.err and "KP999" not in none.out
    said = [e for e in logs if e["event"] == "premium.answer_refused"]
    assert [(e["sender"], e["reason"]) for e in said] == [(EVE, "sender not on the reply ACL")]


async def test_a_password_added_again_for_another_account_lists_each_answers_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The SMS of a removed service stay answerable; with its password added again for another
    account, `premium answers KP123` lists both clients' answers, and each line names its account."""
    other = "boss@other.example"
    async with premium(tmp_path) as w:
        old_vote = await w.vote()
        await w.cli("premium", "remove", "KP123")
        await w.cli("account", "add", "other")
        seen = len(w.sink.messages)
        await w.cli("premium", "add", "KP123", "--account", "other", "--email", other)
        w.gw.store.outbox.on_queued()
        await w.sink.wait(seen + 1)
        ask = parsed(w.sink.messages[seen][2])
        assert (await smtp(w.gw.port, *reply_to(ask, "yes", sender=other), sender=other)).error is None
        new_vote = await w.vote("KP123 vote B")
        assert (await smtp(w.gw.port, *reply_to(old_vote, "Dziekujemy A"))).error is None
        answer, to = reply_to(new_vote, "Dziekujemy B", sender=other)
        assert (await smtp(w.gw.port, answer, to, sender=other)).error is None
        await w.gw.until(lambda: len(w.sent()) == 2)
        capsys.readouterr()
        await w.cli("premium", "answers", "KP123")
        listed = capsys.readouterr().out.splitlines()
    # the daemon runs in this process: a log line of its own may come between the listing's lines
    header, *rows = [line for line in listed if not LOG_LINE.match(line)]
    assert header.split()[:4] == ["time", "service", "account", "number"]
    assert [row.split()[2:6] for row in rows] == [
        ["KP123", "other", "7355", other],
        ["KP123", "acme", "7355", CLIENT],
    ]


async def test_one_services_answers_are_read_off_its_own_index_entries(tmp_path: Path) -> None:
    """`premium answers KPxxx` reads that password's answers only: read newest first off the index of
    all answers, it walked every other service's answer since to find a few (many thousands a month
    for a busy contest's automatic thank-you)."""

    def steps(repo: PremiumRepo, password: str) -> tuple[int, int]:
        counted = [0]

        def count() -> int:
            counted[0] += 1
            return 0

        repo.conn.set_progress_handler(count, 100)
        try:
            listed = repo.answers_list(password, None, False, 50)
        finally:
            repo.conn.set_progress_handler(None, 0)
        return len(listed), counted[0]

    async with premium(tmp_path) as w:
        vote = await w.vote()
        assert (await smtp(w.gw.port, *reply_to(vote, "Dziekujemy!"))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        repo = handlers.repo(w.gw.store)
        listed, before = steps(repo, "KP123")
        assert listed == 1

        def others() -> None:
            # Another service's SMS (as an unknown password's: no confirmation to go through) and its
            # answers, newer than KP123's: a walk newest first over all answers meets them first.
            pmo = repo.conn.execute(
                "INSERT INTO premium_mo (mo_id, number, phone, password, parts, price, commission, text,"
                " state, received_at) VALUES (?, '7355', ?, 'KP456', 1, 300, 110, '', 'fallback', ?)",
                (10**9, PHONE, w.gw.store.clock()),
            ).lastrowid
            assert pmo is not None
            for _ in range(5000):
                repo.record_answer(pmo, EVE, None, "refused", "sender not on the reply ACL")

        await w.gw.store.write(others)
        listed, after = steps(repo, "KP123")
    assert listed == 1
    assert after <= before + 5, (before, after)
