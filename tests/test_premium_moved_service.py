"""A premium SMS stays its account's when its service moves to another account (`premium set
--account`): the answer to it is refused while that account is suspended, follows its reply window,
is billed to it, and the new account's users may not answer it (R-4.5, R-5.2). Before, each answer
followed the service's account of the moment: an answer to acme's vote went out while acme was
suspended and its line went into beta's bill while the vote stayed in acme's.

Against real peers, as tests/test_premium_answer_rules.py: the daemon with its built-in SMSC
simulator, the vote's mail read at a real SMTP sink, the answer sent by a real SMTP client, and the
CLI run as its own process on the daemon's database.
"""

from __future__ import annotations

import asyncio
import smtplib
from datetime import datetime
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

from gateway.config import load_config
from tests.billing_world import cli as run_smsgw
from tests.conftest import SmtpResult
from tests.test_premium_answer_rules import DAY, premium
from tests.test_premium_loop import CLIENT, reply_to, smtp

BOSS = "boss@beta.example"  # a user of account beta, the account KP123 moves to


async def cli(config: Path, *args: str) -> str:
    """`smsgw ARGS` as an admin runs it: its own process; its output."""
    done = await asyncio.to_thread(run_smsgw, config, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def send(port: int, raw: bytes, rcpt: str, sender: str = CLIENT) -> str | None:
    """A real SMTP client's answer: None when taken, else the gateway's reply at DATA."""
    result = cast(SmtpResult, await smtp(port, raw, rcpt, sender))
    if result.error is None:
        return None
    assert isinstance(result.error, smtplib.SMTPDataError), result.error
    return f"{result.error.smtp_code} {result.error.smtp_error.decode()}"


async def test_the_old_votes_answer_follows_its_accounts_suspension_and_bill(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        await cli(w.config, "account", "add", "beta")
        first, second = await w.vote("KP123 vote A"), await w.vote("KP123 vote B")
        out = await cli(w.config, "premium", "set", "KP123", "--account", "beta")
        said = [line for line in out.splitlines() if line.startswith("the SMS it received before")]
        assert len(said) == 1, out
        assert "stay acme's (the 2 still answerable until" in said[0]
        assert "billed to acme, refused while acme is suspended, and beta's users may not answer" in said[0]

        await cli(w.config, "account", "suspend", "acme", "--reason", "unpaid invoice")
        refused = await send(w.gw.port, *reply_to(first, "Thank you"))
        assert refused == (
            "550 5.7.1 Account acme is suspended: unpaid invoice; ask the gateway's admin to resume it"
            " (smsgw account resume)"
        )

        # beta's suspension is not acme's: the vote's answer goes, and so does the other one's.
        await cli(w.config, "account", "resume", "acme")
        await cli(w.config, "account", "suspend", "beta")
        for vote in (first, second):
            assert await send(w.gw.port, *reply_to(vote, "Thank you")) is None
        await w.gw.until(lambda: len(w.sent()) == 2)

        cfg = load_config(w.config)
        month = datetime.now(ZoneInfo(cfg.gateway.timezone)).strftime("%Y-%m")
        await cli(w.config, "billing", "run", "--month", month)
        files = {p.stem: p.read_text() for p in (tmp_path / "state").rglob(f"{month}/*.txt")}
        lines = {
            name: [row.split("\t")[2] for row in text.splitlines() if row[:4].isdigit()]
            for name, text in files.items()
        }
        assert lines["acme"] == ["premium-MO", "premium-MO", "premium-answer", "premium-answer"], files
        assert lines["beta"] == [], files


async def test_the_new_accounts_users_are_told_why_they_may_not_answer_an_old_vote(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        await cli(w.config, "account", "add", "beta")
        await cli(w.config, "user", "add", BOSS, "--account", "beta")
        old = await w.vote("KP123 vote A")
        acl = ("--reply-acl", CLIENT, "--reply-acl", BOSS)
        await cli(w.config, "premium", "set", "KP123", "--account", "beta", *acl)
        new = await w.vote("KP123 vote B")

        reply = await send(w.gw.port, *reply_to(old, "Thanks from beta", BOSS), BOSS)
        assert reply is not None
        # Not by acme's name: one company is never told another's (the operator's record names it).
        assert f"550 5.7.1 <{BOSS}> may not answer this premium SMS: it came in for another account" in reply
        assert "acme" not in reply, reply
        assert "before premium service KP123 moved to account beta" in reply
        assert w.answers()[-1] == ("refused", "received for account acme before KP123 moved to account beta")

        # The vote received since is beta's to answer; the old one its client's, as before.
        assert await send(w.gw.port, *reply_to(new, "Thanks from beta", BOSS), BOSS) is None
        assert await send(w.gw.port, *reply_to(old, "Thanks from acme")) is None
        await w.gw.until(lambda: len(w.sent()) == 2)
        assert sorted(str(s["text"]) for s in w.sent()) == ["Thanks from acme", "Thanks from beta"]


async def test_the_old_votes_answer_follows_its_accounts_reply_window(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        await cli(w.config, "account", "add", "beta")
        await cli(w.config, "account", "set", "acme", "--reply-window-days", "1")
        await cli(w.config, "account", "set", "beta", "--reply-window-days", "30")
        vote = await w.vote()
        await cli(w.config, "premium", "set", "KP123", "--account", "beta")
        w.skew[0] = 2 * DAY
        refused = await send(w.gw.port, *reply_to(vote, "Late thanks"))
        assert refused == "550 5.7.1 This premium SMS is older than 1 days and can no longer be answered"
        assert w.answers()[-1] == ("refused", "older than the reply window")


async def test_the_old_votes_answer_is_cut_at_its_accounts_end_marker(tmp_path: Path) -> None:
    """Read as the vote's account's staff mail is: acme's client ends its mail with acme's marker."""
    async with premium(tmp_path) as w:
        await cli(w.config, "account", "add", "beta")
        await cli(w.config, "account", "set", "acme", "--end-marker", "KONIEC")
        vote = await w.vote()
        await cli(w.config, "premium", "set", "KP123", "--account", "beta")
        assert await send(w.gw.port, *reply_to(vote, "TAK, dziekujemy.\nKONIEC\nStopka firmy acme")) is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert w.sent()[0]["text"] == "TAK, dziekujemy."
