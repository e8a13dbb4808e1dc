"""A premium answer goes to a phone that voted after its client's account listed it.

An account's own opt-out (migration 59) ended at the claim every SMS of that account to the number,
the client's answer to a vote that came after the entry too: the phone paid for the answer, the
answer address heard 250, and the SMS failed unsent with a bounce saying the number went on the
list "after this mail was accepted". Real peers as tests/test_premium_answer_rules.py: the daemon
with its built-in simulator, the client's mail read at a real SMTP sink and answered over SMTP.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import PHONE, reply_to, smtp


async def test_the_answer_to_a_vote_after_the_accounts_entry_goes(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        store = w.gw.store
        (acme,) = [a.id for a in store.accounts.list_accounts() if a.name == "acme"]
        assert await store.write(lambda: store.policy.add_account_optout(acme, PHONE))
        w.skew[0] += 1.0  # the vote comes after the entry
        vote = await w.vote()
        assert (await smtp(w.gw.port, *reply_to(vote, "Dziękujemy za głos"))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert w.sent()[0]["text"] == "Dziękujemy za głos"
        await w.gw.until(lambda: w.gw.states() not in ([], ["queued"]))
        assert "failed" not in w.gw.states()
