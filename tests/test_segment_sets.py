"""Which segments make one long answer (R-3.4) when the phone's one-octet reference repeats.

Some phones and modems send every long SMS under the same reference: segments are told apart by
our number they were sent to (two companies' pool numbers are two answers), by a place already
held with another text (a new SMS), and a copy of a segment already joined is taken for the SMSC's
redelivery only while its acknowledgement is not known to have been read, as for a whole text.
The real store and handlers run on a SQLite file with an injected clock (`World`).
"""

from __future__ import annotations

from pathlib import Path

from smsc.base import Concat
from tests.test_conversations import PHONE, SENDER, TIMEOUT_SECONDS, World

ANNA, BOB = "anna@acme.example", "bob@beta.example"


def _expire(w: World) -> None:
    for mo_id in w.store.mo.join_stale_segments(w.now - TIMEOUT_SECONDS):
        w.events.whole_mo(mo_id)


def _mails(w: World) -> list[tuple[str, str]]:
    """(recipient, first line of the body) of each mail queued."""
    return [(rcpt, msg.get_body().get_content().split("\n")[0]) for _k, rcpt, msg in w.outbox()]


def _unmailed_segments(w: World) -> list[str]:
    """Segments consumed into no whole text: text nobody was sent."""
    wholes = [
        t for (t,) in w.store.db.conn.execute("SELECT text FROM mo WHERE state NOT IN ('segment', 'joined')")
    ]
    rows = w.store.db.conn.execute("SELECT text FROM mo WHERE state = 'joined'").fetchall()
    return [t for (t,) in rows if not any(t in whole for whole in wholes)]


async def test_two_answers_to_two_pool_numbers_under_one_reference_reach_each_their_user(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, 'pool = ["+48500100200", "+48500100201"]\nfallback_address = "fb@example.com"')
    w.store.accounts.add_account("beta")
    w.store.accounts.add_user(BOB, "beta")
    to_anna = w.send(ANNA)
    w.now += 10
    to_bob = w.send(BOB)
    assert to_anna != to_bob
    w.now += 10
    # The SMSC delivers the two 2-part answers interleaved, both under reference 0.
    await w.mo("To Bob part one, ", to=to_bob, concat=Concat(ref=0, total=2, seq=1))
    await w.mo("To Anna part one, ", to=to_anna, concat=Concat(ref=0, total=2, seq=1))
    await w.mo("to Anna part two.", to=to_anna, concat=Concat(ref=0, total=2, seq=2))
    await w.mo("to Bob part two.", to=to_bob, concat=Concat(ref=0, total=2, seq=2))
    w.now += TIMEOUT_SECONDS + 5
    await w.store.write(lambda: _expire(w))

    assert sorted(_mails(w)) == [
        (ANNA, "To Anna part one, to Anna part two."),
        (BOB, "To Bob part one, to Bob part two."),
    ]
    assert w.mo_states() == ["mailed", "mailed"]
    assert _unmailed_segments(w) == []


async def test_a_new_sms_under_the_same_reference_does_not_take_the_place_of_a_lost_part(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    w.send(ANNA)
    w.now += 60
    await w.mo("First alarm part one, ", concat=Concat(ref=0, total=2, seq=1))  # its part two never comes
    w.now += 60
    await w.mo("Second alarm part one, ", concat=Concat(ref=0, total=2, seq=1))
    await w.mo("second alarm part two.", concat=Concat(ref=0, total=2, seq=2))
    w.now += TIMEOUT_SECONDS + 5
    await w.store.write(lambda: _expire(w))

    assert _mails(w) == [
        (ANNA, "Second alarm part one, second alarm part two."),
        (ANNA, "First alarm part one,  [part 2 of 2 missing]"),
    ]
    assert _unmailed_segments(w) == []


async def test_the_same_first_segment_an_hour_later_is_a_new_sms_once_the_first_was_acknowledged(
    tmp_path: Path,
) -> None:
    head = (
        "ALARM obiekt Magazyn 3, czujnik ruchu strefa B, prosimy o kontakt z centrum monitoringu, szczegoly: "
    )
    w = World(tmp_path)
    w.send(ANNA)
    w.now += 60
    await w.mo(head, concat=Concat(ref=0, total=2, seq=1))
    await w.mo("godz 10:15", concat=Concat(ref=0, total=2, seq=2))
    w.now += 3600
    await w.mo(head, concat=Concat(ref=0, total=2, seq=1))
    await w.mo("godz 11:20", concat=Concat(ref=0, total=2, seq=2))
    w.now += TIMEOUT_SECONDS + 5
    await w.store.write(lambda: _expire(w))

    assert [line for _rcpt, line in _mails(w)] == [head + "godz 10:15", head + "godz 11:20"]
    assert w.mo_states() == ["mailed", "mailed"]


async def test_a_segment_delivered_again_without_its_acknowledgement_read_is_still_a_duplicate(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    w.send(ANNA)
    w.now += 60
    await w.mo("Part one, ", concat=Concat(ref=7, total=2, seq=1), acked=False)
    await w.mo("part two.", concat=Concat(ref=7, total=2, seq=2), acked=False)
    w.now += 3600  # the SMSC never read our answer to part one: it delivers it again
    await w.mo("Part one, ", concat=Concat(ref=7, total=2, seq=1))
    w.now += TIMEOUT_SECONDS + 5
    await w.store.write(lambda: _expire(w))

    assert _mails(w) == [(ANNA, "Part one, part two.")]
    states = [s for (s,) in w.store.db.conn.execute("SELECT state FROM mo ORDER BY id")]
    assert states.count("duplicate") == 1


async def test_a_set_whose_parts_name_our_number_in_two_ways_is_one_answer(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.send(ANNA)
    w.now += 60
    digits = SENDER.removeprefix("+")  # a number the plan does not know is kept as the link wrote it
    await w.mo("One link, ", to=digits, concat=Concat(ref=3, total=2, seq=1))
    await w.mo("another link.", to="00" + digits, concat=Concat(ref=3, total=2, seq=2))

    assert _mails(w) == [(ANNA, "One link, another link.")]
    assert PHONE in w.store.db.conn.execute("SELECT source FROM mo WHERE state = 'mailed'").fetchone()
