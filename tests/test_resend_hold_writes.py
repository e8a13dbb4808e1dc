"""A part held for its earlier submit's late answer (`smsc.lateholds`) waits in the queue until its hold
ends, not claimed and put back every second: the daemon against a fake SMSC over loopback TCP that
leaves the first submit unanswered and then floods MOs ahead of its late answer, the store taking no
MO for a while (the reader stays paused, the part held).

Defect: the dispatcher put a held part back due again in one second, so that for as long as the hold
lasted (up to the pause a hold is credited, five response timeouts: minutes at the default) the part
was claimed and put back, two writes each second. It is now put back due when the hold ends at the
latest, and made due at once when the hold ends sooner (the session gone, its grace run out).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from smsc import lateholds
from tests.conftest import Running, mail
from tests.test_late_answer import to
from tests.test_smsc_resend_held_behind_floods import FloodNoAnswerSMSC, FloodThenLateSMSC, held_and_stuck

HELD_FOR = 4.0  # seconds the store takes no MO once the part is held: the reader stays paused
# A claim of the part (`QueueRepo.claim_due`), as the loop's connection runs it.
CLAIM = re.compile(r"UPDATE parts SET state = 'active'.* WHERE id IN \(1\)")


async def test_a_held_part_is_not_claimed_again_each_second_while_its_hold_lasts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    async with FloodThenLateSMSC(answer_after=1.2) as smsc:
        # Its 30 s of flood credit: the hold outlasts the look.
        async with held_and_stuck(tmp_path, monkeypatch, smsc, "Once only") as (gw, logs, gate):
            gw.store.db.conn.set_trace_callback(statements.append)
            await asyncio.sleep(HELD_FOR)
            gw.store.db.conn.set_trace_callback(None)
            gate.set()
            await gw.until(lambda: gw.states() == ["delivered"])
    assert [s.text for s in smsc.received if s.text == "Once only"] == ["Once only"]
    assert len([e for e in logs if e["event"] == "mt.resend_held"]) == 1
    # Claimed while held over the look: before, each second (4); now not until the hold ends.
    claims = [s for s in statements if CLAIM.search(s)]
    assert claims == [], len(claims)


async def test_a_hold_that_ends_early_sends_the_part_and_the_sms_behind_it_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The session goes while the part is held (no answer can come): the part is due at once, not when
    # its hold could have ended at the latest (the grace and 30 s of credit on), and so is a later
    # SMS to its phone put back to go after it, in their order.
    async with FloodNoAnswerSMSC(flood_after=1.2, stop_first=False) as smsc:
        async with held_and_stuck(tmp_path, monkeypatch, smsc, "Once only") as (gw, logs, gate):
            await gw.send(mail(to("601123456"), "Then this"))
            await gw.until(lambda: any(e["event"] == "mt.behind_suspect" for e in logs))
            # Both wait in the queue for the hold's latest end (due again each second before).
            await gw.until(lambda: len(held_to(gw)) == 2)
            held = held_to(gw)
            smsc.drop_all()
            gate.set()  # the reader reads on, to the session's end
            # Bounds a hang only: the order and the store tell the outcome.
            await gw.until(
                lambda: [s.text for s in smsc.received] == ["Once only", "Once only", "Then this"],
                timeout=120,
            )
            due = dict(gw.store.db.conn.execute("SELECT id, next_attempt_at FROM parts").fetchall())
    assert [e["part"] for e in logs if e["event"] == "mt.possible_duplicate"] == [1]
    # Made due when the session ended, not left due at the hold's latest end (as they were before).
    assert all(due[part] < latest for part, latest in held.items()), (due, held)


def held_to(gw: Running) -> dict[int, float]:
    """The parts waiting in the queue due beyond the dispatcher's next look, by id: when they are due."""
    rows = gw.store.db.conn.execute(
        "SELECT id, next_attempt_at FROM parts WHERE state IN ('queued', 'deferred') AND next_attempt_at > ?",
        (gw.store.clock() + lateholds.RECHECK_SECONDS,),
    )
    return dict(rows.fetchall())
