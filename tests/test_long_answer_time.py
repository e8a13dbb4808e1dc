"""A long answer joined by the reassembly timeout, or after a restart long after its parts came,
is matched to its conversation as of when its parts came (R-3.1): the user who texted the phone
last before it answered gets it, and the reply window is judged then. It was matched as of a fixed
5 minutes before the join, with no bound on the conversation's last SMS: a colleague who texted
the phone after it answered got the answer, and a join an outage delayed missed the window."""

from __future__ import annotations

from pathlib import Path

from gateway.reassembly import TIMEOUT_SECONDS
from gateway.store.db import Store
from smsc.base import Concat
from tests.test_conversations import DAY, World
from tests.test_store import undo_migration_33

ANNA, BOB = "anna@acme.example", "bob@acme.example"


async def _expire(w: World) -> list[int]:
    def expire() -> list[int]:
        joined = w.store.mo.join_stale_segments(w.now - TIMEOUT_SECONDS)
        for mo_id in joined:
            w.events.whole_mo(mo_id)
        return joined

    return await w.store.write(expire)


async def test_a_long_answer_joined_by_the_timeout_goes_to_the_user_it_answered(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.send(ANNA)
    w.now += 60
    answered_at = w.now
    await w.mo("one ", concat=Concat(ref=5, total=3, seq=1))
    await w.mo("three", concat=Concat(ref=5, total=3, seq=3))  # part 2 never comes
    w.now += 60
    w.send(BOB)  # Bob texts the phone a minute after it answered Anna
    w.now += TIMEOUT_SECONDS + 1
    [mo_id] = await _expire(w)
    ((kind, rcpt, _msg),) = w.outbox()
    assert (kind, rcpt) == ("reply", ANNA)
    # Billing's months go by the join; the answer's time is kept beside it.
    row = w.store.db.conn.execute("SELECT received_at, parts_at FROM mo WHERE id = ?", (mo_id,)).fetchone()
    assert row == (w.now, answered_at)


async def test_a_long_answer_joined_late_is_judged_by_when_its_parts_came(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.send(ANNA)
    w.now += 7 * DAY - 600  # ten minutes of the window left
    await w.mo("one ", concat=Concat(ref=6, total=3, seq=1))
    await w.mo("three", concat=Concat(ref=6, total=3, seq=3))
    w.now += 3600  # the daemon was down for an hour; the join comes after the restart
    await _expire(w)
    ((kind, rcpt, _msg),) = w.outbox()
    assert (kind, rcpt) == ("reply", ANNA)


async def test_a_long_answer_that_came_whole_goes_to_the_user_texted_before_its_first_part(
    tmp_path: Path,
) -> None:
    # The SMSC held part 3 for a while; Bob texted the phone meanwhile.
    w = World(tmp_path)
    w.send(ANNA)
    w.now += 60
    await w.mo("one ", concat=Concat(ref=7, total=3, seq=1))
    await w.mo("two ", concat=Concat(ref=7, total=3, seq=2))
    w.now += 60
    w.send(BOB)
    w.now += 60
    await w.mo("three", concat=Concat(ref=7, total=3, seq=3))
    ((kind, rcpt, _msg),) = w.outbox()
    assert (kind, rcpt) == ("reply", ANNA)


def test_migration_33_keeps_the_mos_stored_before(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "db.sqlite")
    s.db.conn.execute(
        "INSERT INTO mo (link, source, destination, text, state, received_at)"
        " VALUES ('main', '+48601123456', '+48100200300', 'Yes', 'mailed', 1000.5)"
    )
    undo_migration_33(s.db.conn)
    s.db.conn.execute("UPDATE schema_version SET version = 32")
    s.close()
    s = Store.open(tmp_path / "db.sqlite")
    try:
        assert s.db.conn.execute("SELECT received_at, parts_at FROM mo").fetchall() == [(1000.5, None)]
    finally:
        s.close()
