"""Whom an answer may reach when the address that sent its SMS changed hands (R-3.1, R-3.3).

A user removed and added again (a new employee given the same address, or the same person moved to
another company's account) is not the user whose SMS the phone answers: such answers go to the
fallback address, until the address's new holder texts the phone. Real store and handlers on a
SQLite file, injected clock (`World`).
"""

from __future__ import annotations

from pathlib import Path

from tests.test_conversations import DAY, World

JAN = "jan@acme.example"
FALLBACK = 'fallback_address = "fb@example.com"'


def _mails(w: World) -> list[tuple[str, str, str]]:
    return [(kind, rcpt, msg.get_body().get_content()) for kind, rcpt, msg in w.outbox()]


async def test_an_address_added_again_does_not_get_the_answer_to_its_predecessors_sms(tmp_path: Path) -> None:
    w = World(tmp_path, FALLBACK)
    w.send(JAN, text="Umowa dla pana, prosze o decyzje")
    w.now += DAY
    w.store.accounts.remove_user(JAN)
    w.now += DAY
    w.store.accounts.add_user(JAN, "acme")  # a new employee gets the address
    w.now += DAY
    await w.mo("Decyzja: tak, podpisuje")

    [(kind, rcpt, body)] = _mails(w)
    assert (kind, rcpt) == ("reply-fallback", "fb@example.com")
    assert "Decyzja: tak, podpisuje" in body
    note = w.store.db.conn.execute("SELECT state, note FROM mo").fetchone()
    assert note == ("fallback", f"it answers an SMS {JAN} sent before the address was added again as a user")


async def test_a_user_moved_to_another_account_does_not_get_the_old_accounts_answers(tmp_path: Path) -> None:
    w = World(tmp_path, FALLBACK)
    w.send(JAN)
    w.store.accounts.add_account("beta")
    w.store.accounts.remove_user(JAN)
    w.store.accounts.add_user(JAN, "beta")  # the same second: the account tells
    w.now += 60
    await w.mo("Tak")

    assert [(k, r) for k, r, _ in _mails(w)] == [("reply-fallback", "fb@example.com")]
    state, note, account = w.store.db.conn.execute("SELECT state, note, account_id FROM mo").fetchone()
    acme = next(a.id for a in w.store.accounts.list_accounts() if a.name == "acme")
    assert (state, note, account) == (
        "fallback",
        f"it answers {JAN}, who belongs to another account since",
        acme,  # billed to the account whose SMS it answers, never the user's new one
    )


async def test_the_new_holder_of_an_address_gets_the_answers_to_their_own_sms(tmp_path: Path) -> None:
    w = World(tmp_path, FALLBACK)
    w.send(JAN, text="old")
    w.now += DAY
    w.store.accounts.remove_user(JAN)
    w.store.accounts.add_user(JAN, "acme")
    w.now += DAY
    w.send(JAN, text="Nowa oferta")
    w.now += 60
    await w.mo("Tak")

    [(kind, rcpt, body)] = _mails(w)
    assert (kind, rcpt) == ("reply", JAN)
    assert "> Nowa oferta" in body and "old" not in body
