"""MOs after the wall clock stepped back: their times move with the step.

A phone's vote sent again after a step back (or before the housekeeping's look finds the step) is a
new SMS it paid for, not the SMSC's copy of the first; the hourly mail limit counts the real last
hour, not the stepped one. Runs on a real SQLite file with an injected clock, below the network.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway import stepmoves
from gateway.housekeeping import Housekeeping
from tests.test_clock_step import HOUR, Monotonic, housekeeping
from tests.test_conversations import World as TwoWayWorld
from tests.test_premium import World as PremiumWorld

PLAN = "SELECT value FROM billing_state WHERE key = ?"


async def test_the_same_vote_sent_again_after_a_step_back_is_charged_again(tmp_path: Path) -> None:
    # The phone votes, the SMSC reads our acknowledgement, the clock steps back an hour, and a
    # minute later the phone votes again: a new SMS it paid for, not the SMSC's copy of the first
    # (which on the stepped clock seemed to come an hour before that acknowledgement).
    w = PremiumWorld(tmp_path)
    w.service()
    mono = Monotonic()
    hk = housekeeping(w.store, mono)
    await hk.check_clock()
    await w.mo("KP123 A")
    w.now += 2.0 - HOUR
    mono.t += 2.0
    assert await hk.check_clock() == pytest.approx(HOUR)
    w.now += 60.0
    mono.t += 60.0
    await w.mo("KP123 A")
    assert [r[0] for r in w.premium_mo()] == ["mailed", "mailed"]
    assert len(w.outbox("premium")) == 2


async def test_the_same_vote_sent_again_before_a_step_back_is_seen_is_charged_again(tmp_path: Path) -> None:
    # The housekeeping looks every few seconds: an MO can come between the step and that look.
    # Stamped before its copy's acknowledgement, it is no repeat of the SMSC's (that comes after).
    w = PremiumWorld(tmp_path)
    w.service()
    await w.mo("KP123 A")
    w.now += 1.0 - HOUR
    await w.mo("KP123 A")
    assert [r[0] for r in w.premium_mo()] == ["mailed", "mailed"]


async def two_answers_then_a_step_back(tmp_path: Path) -> tuple[TwoWayWorld, Monotonic, Housekeeping]:
    """Two answers under a limit of 2 mails an hour, then 70 minutes later the clock stepped back an
    hour, which the housekeeping has not looked at yet."""
    w = TwoWayWorld(tmp_path, "mails_per_phone_per_hour = 2")
    w.send("anna@acme.example")
    mono = Monotonic()
    hk = housekeeping(w.store, mono)
    await hk.check_clock()
    for text in ("Tak", "Będę"):
        await w.mo(text)
        w.now += 60.0
        mono.t += 60.0
    w.now += 68 * 60.0
    mono.t += 68 * 60.0
    assert await hk.check_clock() == 0.0
    w.now += 2.0 - HOUR
    mono.t += 2.0
    return w, mono, hk


async def test_after_a_step_back_the_hourly_mail_limit_counts_the_last_hour(tmp_path: Path) -> None:
    # Two answers, then 70 minutes later the clock steps back an hour: on the stepped clock the
    # two would seem 10 minutes old, and a third answer would be kept by the limit of 2 an hour.
    w, _, hk = await two_answers_then_a_step_back(tmp_path)
    with capture_logs() as logs:
        assert await hk.check_clock() == pytest.approx(HOUR)
    await w.mo("Jednak o 11")
    assert w.mo_states() == ["mailed", "mailed", "mailed"]
    assert logs[0]["mos"] == 2


async def test_while_a_step_back_moves_the_hourly_mail_limit_counts_the_answers_not_moved_yet_by_it(
    tmp_path: Path,
) -> None:
    # As above, but the answer comes while the step's move is under way: the stop's last look found the
    # step and left the move of the MOs to the next start, whose worker had not reached them yet (a move
    # of days takes minutes). Read on the clock they were stamped on, the two answers of 70 minutes ago
    # seemed 10 minutes old, and the third was kept by the limit of 2 an hour until the move was done.
    w, mono, hk = await two_answers_then_a_step_back(tmp_path)
    assert await hk.check_clock(keep=True) == pytest.approx(HOUR)
    plan = json.loads(w.store.db.conn.execute(PLAN, (stepmoves.PLAN_KEY,)).fetchone()[0])
    assert plan["at"]["mo"] < plan["ends"]["mo"]  # the MOs are still to move
    await w.mo("Jednak o 11")
    assert w.mo_states() == ["mailed", "mailed", "mailed"]
    again = housekeeping(w.store, mono)  # the next start's worker finishes the move: nothing changes
    w.now += 2.0
    mono.t += 2.0
    assert await again.check_clock() == 0.0
    assert w.store.db.conn.execute(PLAN, (stepmoves.PLAN_KEY,)).fetchone() is None
    for text in ("Albo o 12", "Albo o 13"):  # the second of the hour mailed, the third kept, as before
        await w.mo(text)
    assert w.mo_states() == ["mailed"] * 4 + ["throttled"]
