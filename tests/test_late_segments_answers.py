"""The late part of a long two-way answer (R-3.4, R-4.6): it reaches the user the answer is to.

The rest of an answer whose first parts the timeout mailed goes to the same user, threaded like the
first mail, whoever texted the phone since; it is the same answer for the hourly limit, and parts
sent a timeout apart to get past that limit count as further answers. Runs on a real SQLite file
with an injected clock, below the network.
"""

from __future__ import annotations

from pathlib import Path

from gateway.housekeeping import Housekeeping
from gateway.reassembly import TIMEOUT_SECONDS, gap
from smsc.base import Concat
from tests.test_conversations import World as TwoWayWorld
from tests.test_late_segments import answer_to_anna_timed_out, housekeeping


async def rest_after_bob_texted(w: TwoWayWorld, hk: Housekeeping, timeout: float = TIMEOUT_SECONDS) -> None:
    """Bob texts the phone; part 3 of the answer to Anna comes after, and a timeout passes."""
    w.now += 60
    w.send("bob@acme.example", subject="Lunch", text="Lunch?")
    w.now += 60
    await w.mo("see you there", concat=Concat(ref=5, total=3, seq=3))
    w.now += timeout + 1
    await hk.expire()


async def test_a_late_part_of_an_answer_reaches_the_user_it_answers(tmp_path: Path) -> None:
    # Anna's SMS is answered by a long SMS whose part 3 comes after the timeout mailed parts 1-2
    # to her. Bob texted the phone since (without a pool, the latest sender takes new answers):
    # the rest of Anna's answer still goes to Anna, threaded like the first mail, never to Bob.
    w = TwoWayWorld(tmp_path, 'mails_per_phone_per_hour = 1\nfallback_address = "ops@example.com"')
    hk = await answer_to_anna_timed_out(w)
    await rest_after_bob_texted(w, hk)
    assert w.mo_states() == ["mailed", "mailed"]
    (_, to_first, first), (kind, to_late, late) = w.outbox()
    assert (kind, to_first, to_late) == ("reply", "anna@acme.example", "anna@acme.example")
    assert first.get_content().startswith(f"Yes, at ten,  {gap(3, 3, 3)}")
    late_text = late.get_content()
    assert late_text.startswith(f"{gap(1, 2, 3)} see you there") and "came late" in late_text
    assert late["In-Reply-To"] == first["In-Reply-To"] and late["Subject"] == first["Subject"]
    # The SMSC's copy of it is a duplicate: no third mail.
    await w.mo("see you there", concat=Concat(ref=5, total=3, seq=3))
    assert len(w.outbox()) == 2


async def test_a_late_part_follows_its_answer_under_the_longest_timeout_allowed(tmp_path: Path) -> None:
    # `reassembly_timeout_seconds` at a day: the redelivery window was counted back from the late
    # part's join, itself a day after the part came, and so never reached the first join. The part
    # became a new answer and went to Bob, who had texted the phone since.
    day = 86400.0
    w = TwoWayWorld(tmp_path, f"reassembly_timeout_seconds = {day}")
    hk = await answer_to_anna_timed_out(w, day)
    await rest_after_bob_texted(w, hk, day)
    assert w.mo_states() == ["mailed", "mailed"]
    # (The SMS themselves expired unsent over the two days: their failure notices are no answers.)
    (_, to_first, first), (_, to_late, late) = [m for m in w.outbox() if m[0] == "reply"]
    assert (to_first, to_late) == ("anna@acme.example", "anna@acme.example")
    assert late["In-Reply-To"] == first["In-Reply-To"]
    late_text = late.get_content()
    assert late_text.startswith(f"{gap(1, 2, 3)} see you there") and "came late" in late_text


async def test_the_late_part_of_an_answer_is_no_further_answer_for_the_hourly_limit(tmp_path: Path) -> None:
    # Two answers an hour may be mailed; the late part of the first counted as the second, and the
    # phone's next answer was held back.
    w = TwoWayWorld(tmp_path, "mails_per_phone_per_hour = 2")
    hk = await answer_to_anna_timed_out(w)
    await w.mo("see you there", concat=Concat(ref=5, total=3, seq=3))
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    await w.mo("And bring the slides")
    assert w.mo_states() == ["mailed", "mailed", "mailed"]


async def test_late_parts_a_timeout_apart_do_not_get_past_the_hourly_limit(tmp_path: Path) -> None:
    # A phone opens two sets of a 10-part SMS and sends one part of each every six minutes: every
    # part came a timeout after the last and was mailed as a late rest, uncounted (20 mails in
    # 55 minutes under a limit of 2). The first late rest of each SMS is that SMS, counted with it;
    # further ones count, and at the limit they are kept, as answers are.
    w = TwoWayWorld(tmp_path, "mails_per_phone_per_hour = 2")
    w.send("anna@acme.example")
    hk = housekeeping(w)
    for seq in range(1, 11):
        for ref in (1, 2):
            w.now += 1
            await w.mo(f"ref{ref} part{seq} ", concat=Concat(ref=ref, total=10, seq=seq))
        w.now += TIMEOUT_SECONDS + 1
        await hk.expire()
    assert len([m for m in w.outbox() if m[0] == "reply"]) == 4
    assert w.mo_states() == ["mailed"] * 4 + ["throttled"] * 16
    notes = [n for (n,) in w.store.db.conn.execute("SELECT note FROM mo WHERE state = 'throttled'")]
    assert all(n.startswith("the late part of MO ") and "kept here, not mailed" in n for n in notes)
