"""Long answers (R-3.4) from phones that send every long SMS under the same reference, losing parts.

Each incomplete SMS is mailed a timeout after its own last part, however many more the phone sends
under the reference meanwhile; a new SMS's parts are never mixed into the one whose part was lost
before it; what one reference holds waiting stays bounded, and sorting it is one pass. The real
store and handlers run on a SQLite file with an injected clock (`World`), the timeout through the
daemon's housekeeping worker.
"""

from __future__ import annotations

from pathlib import Path

from gateway.housekeeping import Housekeeping
from gateway.reassembly import TIMEOUT_SECONDS
from gateway.store import segments
from smsc.base import Concat
from tests.test_conversations import World
from tests.test_late_segments import charged
from tests.test_late_segments import housekeeping as premium_housekeeping
from tests.test_premium import CLIENT
from tests.test_premium import World as PremiumWorld

ANNA = "anna@acme.example"


def housekeeping(w: World) -> Housekeeping:
    """The daemon's housekeeping worker, started now on the world's clock."""
    return Housekeeping(w.store, w.events.notifier, w.events, dict, Path("/nonexistent"))


def mails(w: World) -> list[str]:
    """The first line of the body of each mail queued."""
    return [msg.get_body().get_content().split("\n")[0] for _k, _rcpt, msg in w.outbox()]


def waiting(w: World) -> int:
    return w.store.db.conn.execute("SELECT count(*) FROM mo WHERE state = 'segment'").fetchone()[0]


async def started(tmp_path: Path) -> tuple[World, Housekeeping]:
    """Anna texted the phone; the daemon has run past its start's hold-back of the timeout."""
    w = World(tmp_path)
    w.send(ANNA)
    hk = housekeeping(w)
    w.now += TIMEOUT_SECONDS + 1
    return w, hk


async def test_incomplete_sms_sent_again_and_again_under_one_reference_are_each_mailed_at_their_timeout(
    tmp_path: Path,
) -> None:
    # A modem sends an alarm every 4 minutes as 2 parts under reference 7; every part 2 is lost.
    # Timed out by the reference's newest part, none was ever mailed while the modem kept sending.
    w, hk = await started(tmp_path)
    sent: list[tuple[float, str]] = []
    for i in range(8):
        text = f"ALARM {i}: sensor {i} over limit, "
        await w.mo(text, concat=Concat(ref=7, total=2, seq=1))
        sent.append((w.now, text))
        for _ in range(4):
            w.now += 60
            await hk.expire()
            due = [t + " [part 2 of 2 missing]" for at, t in sent if at <= w.now - TIMEOUT_SECONDS]
            assert mails(w) == due
            assert waiting(w) <= 2
    assert len(mails(w)) == 7


async def test_the_same_alarm_sent_again_under_one_reference_is_a_new_sms_each_time(tmp_path: Path) -> None:
    # The same text each time: its acknowledgement read minutes before, the part that comes again
    # is the phone's next alarm, not the SMSC's copy (as once its set was joined).
    w, hk = await started(tmp_path)
    text = "ALARM Magazyn 3: czujnik ruchu strefa B, prosimy o kontakt, szczegoly: "
    for _ in range(6):
        await w.mo(text, concat=Concat(ref=7, total=2, seq=1))
        w.now += 240
        await hk.expire()
    w.now += TIMEOUT_SECONDS
    await hk.expire()
    assert mails(w) == [text + " [part 2 of 2 missing]"] * 6
    assert waiting(w) == 0


async def test_the_same_incomplete_alarm_after_its_last_one_was_joined_is_mailed(tmp_path: Path) -> None:
    # Every ten minutes, past the reassembly timeout: each alarm's part waits alone and is joined
    # before the next comes. A part repeating one joined already was taken for the SMSC delivering
    # it again for a day after, and every alarm after the first was lost; the SMSC's copy comes
    # within minutes of its first (`segmentrepeats.AGAIN_SECONDS`).
    w, hk = await started(tmp_path)
    text = "ALARM Magazyn 3: czujnik ruchu strefa B, prosimy o kontakt, szczegoly: "
    for _ in range(4):
        await w.mo(text, concat=Concat(ref=7, total=2, seq=1))
        w.now += 600
        await hk.expire()
    w.now += TIMEOUT_SECONDS
    await hk.expire()
    assert mails(w) == [text + " [part 2 of 2 missing]"] * 4
    # None of the parts, each mailed, is said to repeat a part (as they were: the note was the mark's).
    notes = w.store.db.conn.execute("SELECT note FROM mo WHERE concat_seq IS NOT NULL").fetchall()
    assert notes == [(None,)] * 4


async def test_one_part_delivered_again_minutes_after_its_text_was_mailed_whole_is_not_mailed(
    tmp_path: Path,
) -> None:
    # The SMSC delivers part 1 again five minutes on (its acknowledgement lost in a reconnect): a set
    # lacking parts of its own that repeats a text mailed whole is that copy, whenever it comes (a
    # device sends every part of its next text). It was mailed and billed as "... [part 2 of 2 missing]".
    w, hk = await started(tmp_path)
    p1, p2 = "Dzien dobry, potwierdzam spotkanie w czwartek o 10:00 w biurze przy ul. Dlugiej ", "i agenda."
    await w.mo(p1, concat=Concat(ref=9, total=2, seq=1))
    await w.mo(p2, concat=Concat(ref=9, total=2, seq=2))
    await hk.expire()
    w.now += 300
    await w.mo(p1, concat=Concat(ref=9, total=2, seq=1))
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    assert mails(w) == [p1 + p2]
    assert waiting(w) == 0


async def test_a_new_sms_under_the_same_reference_is_not_mixed_into_one_whose_first_parts_were_lost(
    tmp_path: Path,
) -> None:
    w, hk = await started(tmp_path)
    await w.mo("AAAA end of A", concat=Concat(ref=7, total=3, seq=3))  # its parts 1 and 2 were lost
    w.now += 60
    await w.mo("BBBB one / ", concat=Concat(ref=7, total=3, seq=1))
    w.now += 2
    await w.mo("BBBB two / ", concat=Concat(ref=7, total=3, seq=2))
    await w.mo("BBBB three", concat=Concat(ref=7, total=3, seq=3))
    assert mails(w) == ["BBBB one / BBBB two / BBBB three"]
    w.now += TIMEOUT_SECONDS
    await hk.expire()
    assert mails(w)[1:] == ["[parts 1–2 of 3 missing] AAAA end of A"]
    assert waiting(w) == 0


async def test_a_late_part_that_makes_a_waiting_set_whole_is_its_part_delivered_again(tmp_path: Path) -> None:
    # SMPP carries no stamp. Part 1 we could not store (or whose acknowledgement a dropped
    # connection lost) comes again a minute after part 2: joins it, at once. The 30 s rule
    # alone mailed two halves with gaps five minutes later.
    w, _hk = await started(tmp_path)
    await w.mo("of B.", concat=Concat(ref=7, total=2, seq=2))
    w.now += 60
    await w.mo("The first half ", concat=Concat(ref=7, total=2, seq=1))
    assert mails(w) == ["The first half of B."]
    await w.mo("one ", concat=Concat(ref=9, total=3, seq=1))
    await w.mo("three", concat=Concat(ref=9, total=3, seq=3))
    w.now += 70
    await w.mo("two ", concat=Concat(ref=9, total=3, seq=2))
    assert mails(w)[1:] == ["one two three"]
    assert waiting(w) == 0


async def test_parts_held_by_an_outage_join_the_part_before_it_at_the_timeout(tmp_path: Path) -> None:
    # Part 3 came; the link went down, and the SMSC delivered parts 1 and 2 two minutes later. Part 1
    # alone does not make the waiting set whole and starts one of its own; at the timeout, with no
    # more parts coming, every free place is taken: one SMS, whole.
    w, hk = await started(tmp_path)
    await w.mo("three", concat=Concat(ref=9, total=3, seq=3))
    w.now += 120
    await w.mo("one ", concat=Concat(ref=9, total=3, seq=1))
    await w.mo("two ", concat=Concat(ref=9, total=3, seq=2))
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    assert mails(w) == ["one two three"]
    assert waiting(w) == 0


async def test_the_smsc_stamps_tell_a_new_sms_from_a_held_part_however_close_they_come(
    tmp_path: Path,
) -> None:
    # CIMD2 stamps each part with when the phone sent it. After an outage the SMSC delivers A's
    # part 2 (sent at 10:00, its part 1 lost) and then B (sent at 10:03) back to back: two SMS.
    w, hk = await started(tmp_path)
    a2 = "AAAA second half of A"
    await w.mo(a2, concat=Concat(ref=7, total=2, seq=2), raw={"smsc_time": "261203100000"})
    w.now += 1
    await w.mo(
        "BBBB first half of B / ", concat=Concat(ref=7, total=2, seq=1), raw={"smsc_time": "261203100300"}
    )
    await w.mo(
        "BBBB second half of B", concat=Concat(ref=7, total=2, seq=2), raw={"smsc_time": "261203100301"}
    )
    assert mails(w) == ["BBBB first half of B / BBBB second half of B"]
    w.now += TIMEOUT_SECONDS
    await hk.expire()
    assert mails(w)[1:] == ["[part 1 of 2 missing] " + a2]


async def test_a_part_the_smsc_held_joins_its_set_by_the_stamps_in_any_order(tmp_path: Path) -> None:
    # Part 1 comes three minutes after part 2 (the SMSC retried it): by arrival alone, a part 1 that
    # late would be a new SMS; the stamps say the phone sent them together.
    w, _hk = await started(tmp_path)
    await w.mo("of B.", concat=Concat(ref=7, total=2, seq=2), raw={"smsc_time": "261203100301"})
    w.now += 180
    await w.mo("The first half ", concat=Concat(ref=7, total=2, seq=1), raw={"smsc_time": "261203100300"})
    assert mails(w) == ["The first half of B."]


async def test_parts_the_phone_sent_apart_are_no_late_rest_of_an_earlier_sms(tmp_path: Path) -> None:
    # A's part 2 was lost and A went out with a gap; ten minutes on, part 2 of B comes alone (its
    # part 1 lost). The stamps say B was sent ten minutes after A: a new answer, not A's late part.
    w, hk = await started(tmp_path)
    await w.mo(
        "AAAA first half of A / ", concat=Concat(ref=7, total=2, seq=1), raw={"smsc_time": "261203100000"}
    )
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    w.now += 300
    await w.mo(
        "BBBB second half of B", concat=Concat(ref=7, total=2, seq=2), raw={"smsc_time": "261203101000"}
    )
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    follows = [
        f for (f,) in w.store.db.conn.execute("SELECT follows FROM mo WHERE seqs IS NOT NULL ORDER BY id")
    ]
    assert follows == [None, None]
    assert mails(w) == [
        "AAAA first half of A /  [part 2 of 2 missing]",
        "[part 1 of 2 missing] BBBB second half of B",
    ]


async def test_one_reference_keeps_a_bounded_number_of_parts_waiting(tmp_path: Path) -> None:
    # A broken phone floods parts 1 under one reference within a timeout: the timeout's pass joins
    # the oldest early (mailed with their gaps, none dropped), so every new part reads a bounded set.
    w, hk = await started(tmp_path)
    bound = 512  # `segments.MAX_WAITING_SEGMENTS`: twice the longest SMS
    flood = bound + 40
    for i in range(flood):
        await w.mo(f"part one no. {i}", concat=Concat(ref=7, total=2, seq=1))
        w.now += 0.1
    await hk.expire()
    assert waiting(w) <= bound
    wholes = w.store.db.conn.execute("SELECT count(*) FROM mo WHERE seqs = '1'").fetchone()[0]
    assert wholes + waiting(w) == flood
    assert mails(w)[0] == "part one no. 0 [part 2 of 2 missing]"


class _Counted(tuple):  # type: ignore[type-arg]
    """A row that counts the reads of its fields: the work of sorting rows into sets."""

    reads = 0

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        _Counted.reads += 1
        return super().__getitem__(i)


def test_sorting_the_parts_waiting_under_one_reference_is_one_pass() -> None:
    # Each waiting part was compared with every set before it: a thousand of them cost most of a
    # second of the event loop for each new part, stalling mail, links and the panel.
    n = 1000
    rows = [
        _Counted((i, 1, f"alarm {i}", "main", "+48100200300", 0, None, float(i), float(i))) for i in range(n)
    ]
    _Counted.reads = 0
    sets = segments._sets(rows, 2)
    assert len(sets) == n
    assert _Counted.reads <= 10 * n


async def test_a_premium_vote_whose_first_part_comes_late_is_one_vote_mailed_to_its_client(
    tmp_path: Path,
) -> None:
    # Split by the 30 s rule, its second half went to the fallback address ("no premium
    # password") and the billing file had a failed line beside the vote.
    w = PremiumWorld(tmp_path)
    w.service()
    hk = premium_housekeeping(w)
    await w.mo("part two", concat=Concat(ref=7, total=2, seq=2))
    w.now += 90
    await w.mo("KP123 long vote ", concat=Concat(ref=7, total=2, seq=1))
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    [vote] = charged(w)
    assert vote[3] == 2 and vote[-1] == "long vote part two"
    assert [rcpt for _k, _f, rcpt, _m in w.outbox()] == [CLIENT]
