"""The purge keeps a conversation while an answer kept names it (migration 39).

An answer may come up to the SMS's validity after its conversation's window (held SMS count from
when they went), so it can outlive the conversation, which the purge takes by its window. SQLite
then gave the deleted id to the next conversation made, another company's: the company admin's
panel named that company's user as the one the answer was mailed to, and a refusal of the answer's
mail quoted the wrong conversation. Real store and handlers, injected clock.
"""

from __future__ import annotations

from pathlib import Path

from gateway.conversations.repo import ConversationsRepo
from gateway.retentionpurge import purge_before
from tests.test_conversations import World
from tests.test_pool_exhausted import ANNA, CAROL, DAY, users, went


async def test_a_conversation_an_answer_names_outlives_the_purge_until_it_goes(tmp_path: Path) -> None:
    w = World(tmp_path)
    users(w)
    t0 = w.now
    w.send(ANNA)
    went(w, ANNA, t0 + 20 * 3600)  # held 20 hours
    w.now = t0 + 7 * DAY + 10 * 3600  # within 7 days of the SMS, past 7 days of the mail
    await w.mo("Tak, pasuje")
    assert w.mo_states() == ["mailed"]
    (mo_id,) = w.store.db.conn.execute("SELECT id FROM mo").fetchone()
    repo = ConversationsRepo(w.store.db, w.store.clock)
    mailed_in = repo.conversation_of(mo_id)
    assert mailed_in is not None and mailed_in.user_email == ANNA

    # The nightly purge with a cutoff between the window's end and the answer: the answer stays.
    await purge_before(w.store, t0 + 7 * DAY + 5 * 3600, reply_window=7 * DAY)
    w.send(CAROL, phone="+48601999888")  # another company's first SMS to another phone
    answered = repo.conversation_of(mo_id)
    assert answered is not None and answered.user_email == ANNA, answered

    # Once the answer is purged, its conversation goes at the next run.
    await purge_before(w.store, w.now + 1, reply_window=7 * DAY)
    assert w.store.db.conn.execute("SELECT COUNT(*) FROM mo").fetchone() == (0,)
    left = [c.user_email for c in repo.list_conversations(user=None, numbers=None, limit=5)]
    assert left == [CAROL]
