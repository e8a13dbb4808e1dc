"""A premium answer reaches a phone that paid for it, and the lists that end SMS to a phone since its
vote refuse it at DATA (R-2.4, R-4.5).

A phone that sent STOP before it voted heard its answer accepted (250), and the claim then ended the
SMS as opted out "after this mail was accepted", with a bounce: nothing reached the phone. An entry
on the account's own list since the vote let the answer go. Against real peers, as
tests/test_premium_answer_rules.py: the daemon with its built-in simulator, the vote's mail read at a
real SMTP sink and answered by a real SMTP client.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from gateway.claims import stopped_claimed
from smsc.simulator.control import send_command
from tests.test_premium import World
from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import PHONE, reply_to, smtp


async def test_the_answer_to_a_phone_that_opted_out_before_its_vote_reaches_it(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        store = w.gw.store
        assert await store.write(lambda: store.policy.add_optout(PHONE, word="STOP", source="mo"))
        w.skew[0] += 1.0  # the vote comes after the STOP: the phone paid for its answer since
        vote = await w.vote()
        assert (await smtp(w.gw.port, *reply_to(vote, "Dziękujemy za głos"))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert (w.sent()[0]["destination"], w.sent()[0]["text"]) == (PHONE, "Dziękujemy za głos")
        await w.gw.until(lambda: w.gw.states() not in ([], ["queued"]))
        assert "failed" not in w.gw.states() and store.policy.is_opted_out(PHONE)


async def test_the_account_listing_the_phone_after_its_vote_refuses_the_answer(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        store = w.gw.store
        vote = await w.vote()
        (acme,) = [a.id for a in store.accounts.list_accounts() if a.name == "acme"]
        w.skew[0] += 1.0
        assert await store.write(lambda: store.policy.add_account_optout(acme, PHONE))
        result = await smtp(w.gw.port, *reply_to(vote, "Dziękujemy za głos"))
        assert isinstance(result.error, smtplib.SMTPDataError)  # type: ignore[attr-defined]
        assert result.error.smtp_code == 550  # type: ignore[attr-defined]
        assert "listed by the account's admin" in result.error.smtp_error.decode()  # type: ignore[attr-defined]
        assert w.answers() == [("refused", "the account's admin listed the phone")]
        assert store.db.conn.execute("SELECT count(*) FROM messages").fetchone() == (0,)


async def test_a_phone_listed_before_its_vote_that_says_stop_again_after_it_gets_no_answer(
    tmp_path: Path,
) -> None:
    """The second STOP found the number listed and kept the first STOP's time, so "a STOP since the
    vote" was false and the client's answer was taken and delivered. The phone's STOPs come through
    the simulator as SMS; the entry keeps its first word and source."""
    async with premium(tmp_path) as w:
        store, port = w.gw.store, w.gw.daemon.simulator.control_port
        stop = {
            "op": "mo",
            "source": PHONE,
            "destination": "+48100200300",
            "text": "STOP",
            "protocol": "smpp",
        }
        assert (await send_command("127.0.0.1", port, stop))["ok"]
        await w.gw.until(lambda: store.policy.is_opted_out(PHONE))
        [(first,)] = store.db.conn.execute("SELECT created_at FROM optouts").fetchall()
        w.skew[0] += 60.0
        vote = await w.vote()
        w.skew[0] += 60.0
        assert (await send_command("127.0.0.1", port, {**stop, "text": "stop"}))["ok"]
        stops = "SELECT COUNT(*) FROM mo WHERE state <> 'segment' AND lower(text) = 'stop'"
        await w.gw.until(lambda: store.db.conn.execute(stops).fetchone() == (2,))
        [(word, source, since)] = store.db.conn.execute("SELECT word, source, created_at FROM optouts")
        assert (word, source) == ("STOP", "mo") and since >= first + 120.0
        w.skew[0] += 60.0
        result = await smtp(w.gw.port, *reply_to(vote, "Dziękujemy za głos"))
        assert isinstance(result.error, smtplib.SMTPDataError), result  # type: ignore[attr-defined]
        assert result.error.smtp_code == 550  # type: ignore[attr-defined]
        assert not w.sent()


@pytest.mark.parametrize(
    ("stop_before_vote", "stop_after_vote", "ended"),
    [(True, False, []), (False, True, [1]), (True, True, [1])],
    ids=["before", "after", "before-and-again-after"],
)
async def test_the_claim_ends_an_answer_only_for_a_stop_since_its_vote(
    tmp_path: Path, stop_before_vote: bool, stop_after_vote: bool, ended: list[int]
) -> None:
    """At the claim itself (the daemon claims an answer at once, so a STOP between its acceptance and
    its claim is set up here on the store: a real SQLite file, the clock injected)."""
    w = World(tmp_path)
    w.service()
    if stop_before_vote:
        w.store.policy.add_optout(PHONE, word="STOP", source="mo")
        w.now += 60
    await w.mo("KP123 vote A")
    w.now += 60
    assert w.answer("Thanks, vote counted!")[1]
    if stop_after_vote:
        w.now += 60
        w.store.policy.add_optout(PHONE, word="STOP", source="mo")
    parts = w.store.queue.claim_due(10, now=w.now)
    stopped, cancelled = stopped_claimed(w.store, parts)
    assert len(parts) == 1 and [p.message_id for p in stopped] == ended and cancelled == []
