"""A premium SMS is answered by the addresses that could answer it when it arrived (R-4.5): after
`premium set --account beta --email votes@beta…` the earlier client's mailbox answers the votes it
got before the move, and the new client's mailbox may not, however it came by the answer address.

Before, the answer was checked against the service's reply list of the moment, which `--email` had
rewritten: acme's mailbox was refused the answers its phones paid for ("not on the service's reply
list"), while beta's mailbox answered acme's vote, billed to acme under beta's address. Against real
peers, as tests/test_premium_moved_service.py: the daemon with its built-in SMSC simulator, the mail
read at a real SMTP sink, answers by a real SMTP client, the CLI as its own process.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.config import load_config
from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import CLIENT, reply_to
from tests.test_premium_moved_service import cli, send
from tests.test_two_way import parsed

BETA = "votes@beta.example"  # the mailbox of account beta, which KP123 moves to


async def test_the_old_mailbox_answers_its_votes_and_the_new_one_only_its_own(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        await cli(w.config, "account", "add", "beta")
        old = await w.vote("KP123 before the move")
        out = await cli(w.config, "premium", "set", "KP123", "--account", "beta", "--email", BETA)
        assert f"they are answered from the reply list they had: {CLIENT}" in out, out
        assert f"reply list: {BETA} (was {CLIENT})" in out, out
        assert f"no longer may answer the SMS received from now on: {CLIENT}" in out, out

        # beta's mailbox, holding the answer address somehow, is told whose vote it is.
        refused = await send(w.gw.port, *reply_to(old, "Beta here", BETA), BETA)
        assert refused == (
            f"550 5.7.1 <{BETA}> may not answer this premium SMS: it came in for another account before"
            " premium service KP123 moved to account beta, whose users answer only the SMS received since"
        )
        assert w.answers()[-1] == ("refused", "received for account acme before KP123 moved to account beta")
        # acme's mailbox answers the vote it got, as `set` promised.
        assert await send(w.gw.port, *reply_to(old, "Acme thanks you")) is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert (w.sent()[0]["source"], w.sent()[0]["text"]) == ("7355", "Acme thanks you")

        # beta confirms its address; the vote since is beta's mailbox's to answer, not acme's.
        w.gw.store.outbox.on_queued()  # the CLI's mail is the daemon's to find within 5 s: now, here
        await w.gw.until(lambda: any(rcpts == [BETA] for _, rcpts, _ in w.sink.messages))
        confirmation = parsed(next(raw for _, rcpts, raw in w.sink.messages if rcpts == [BETA]))
        assert await send(w.gw.port, *reply_to(confirmation, "yes", BETA), BETA) is None
        new = await w.vote("KP123 after the move")
        refused = await send(w.gw.port, *reply_to(new, "Acme again"))
        assert (
            refused
            == f"550 5.7.1 <{CLIENT}> may not answer this premium SMS (not on the service's reply list)"
        )
        assert await send(w.gw.port, *reply_to(new, "Beta thanks you", BETA), BETA) is None
        await w.gw.until(lambda: len(w.sent()) == 2)

        cfg = load_config(w.config)
        month = datetime.now(ZoneInfo(cfg.gateway.timezone)).strftime("%Y-%m")
        await cli(w.config, "billing", "run", "--month", month)
        files = {p.stem: p.read_text() for p in (tmp_path / "state").rglob(f"{month}/*.txt")}
        answers = {
            name: [
                row.split("\t")[3]
                for row in text.splitlines()
                if row[:4].isdigit() and "\tpremium-answer\t" in row
            ]
            for name, text in files.items()
        }
        assert answers["acme"] == [CLIENT], files
        assert answers["beta"] == [BETA], files


async def test_a_vote_moved_before_its_list_was_kept_is_answered_by_the_mailbox_it_went_to(
    tmp_path: Path,
) -> None:
    """A database whose service moved under an earlier version holds no list of the earlier account:
    the mailbox the vote was mailed to answers it, and beta's does not."""
    async with premium(tmp_path) as w:
        await cli(w.config, "account", "add", "beta")
        old = await w.vote()
        await cli(w.config, "premium", "set", "KP123", "--account", "beta", "--email", BETA)
        with w.gw.store.db.conn:  # as an earlier version's move left it
            w.gw.store.db.conn.execute("DELETE FROM premium_reply_acl WHERE service_id != 1")
            w.gw.store.db.conn.execute("DELETE FROM premium_services WHERE id != 1")
        assert await send(w.gw.port, *reply_to(old, "Beta here", BETA), BETA) is not None
        assert await send(w.gw.port, *reply_to(old, "Acme thanks you")) is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert w.sent()[0]["text"] == "Acme thanks you"
