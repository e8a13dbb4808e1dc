"""`premium remove` after `premium set --account`: the votes the service received before the move
stay the earlier account's client's to answer (R-4.5), so `remove` counts them too, by their own
account's reply window, and says whose they are. Before, it counted only the service's account of
the moment and said nothing, though the earlier client could still answer them.

Against real peers, as tests/test_premium_removed.py: the daemon with its simulator, the CLI as its
own process, the answer by a real SMTP client.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import reply_to
from tests.test_premium_moved_service import cli, send


async def test_remove_counts_the_votes_the_earlier_account_may_still_answer(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        await cli(w.config, "account", "add", "beta")
        await cli(w.config, "account", "set", "acme", "--reply-window-days", "2")
        vote = await w.vote()
        await cli(w.config, "premium", "set", "KP123", "--account", "beta")
        out = await cli(w.config, "premium", "remove", "KP123")
        said = [line for line in out.splitlines() if "may still answer" in line]
        assert len(said) == 1, out
        assert said[0].startswith(
            "account acme's client may still answer the 1 SMS mailed to it before the service moved"
            " in the reply window, as before, until "
        ), out
        assert await send(w.gw.port, *reply_to(vote, "Dziekujemy!")) is None  # as it says
        await w.gw.until(lambda: len(w.sent()) == 1)
