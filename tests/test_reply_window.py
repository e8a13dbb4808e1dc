"""Issue 10 leftovers below the network: an account's own reply window, conversations left alone by
a mail that queued nothing, and long-MO segments the SMSC delivers again after their set was joined.

Runs the daemon's acceptance and MO code on a real SQLite file with an injected clock (see
tests/test_conversations.py's World).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import conversations
from gateway.cli.main import main
from gateway.reassembly import TIMEOUT_SECONDS
from gateway.retentionpurge import purge_before
from gateway.smtp.accept import accept_now
from gateway.store.records import Acceptance, NewMessage, NewPart
from smsc.base import Concat
from tests.test_conversations import BASE, DAY, PHONE, SENDER, World

ANNA = "anna@acme.example"
OTHER_PHONE = "+48601999888"


def send(
    w: World,
    *,
    account_id: int | None = None,
    phones: tuple[str, ...] = (PHONE,),
    message_id: str | None = None,
    text: str = "At 10?",
) -> int | None:
    """One mail from Anna through the real acceptance; returns the email id (None: all duplicates)."""
    if w.store.accounts.find_user(ANNA) is None:  # mail is accepted from users only
        names = {a.id: a.name for a in w.store.accounts.list_accounts()}
        if account_id is None and "acme" not in names.values():
            w.store.accounts.add_account("acme")
        w.store.accounts.add_user(ANNA, names.get(account_id, "acme") if account_id else "acme")
    msgs = [NewMessage(p, SENDER, text, 0, [NewPart(1, 0, text.encode(), b"", text)]) for p in phones]
    key = f"key-{message_id}" if message_id else None
    acc = Acceptance(ANNA, "127.0.0.1", account_id, None, message_id, key, "Meeting", text, msgs, 3600)
    opening = conversations.opening(
        w.config,  # type: ignore[arg-type]
        user_email=ANNA,
        account_id=account_id,
        sender=SENDER,
        domains=dict.fromkeys(phones, "sms.example.com"),
    )
    return accept_now(w.store, acc, None, (), opening).email_id


def account(w: World, days: float | None) -> int:
    acc = w.store.accounts.add_account("acme")
    return w.store.accounts.update_account("acme", reply_window_days=days).id if days else acc.id


def last_sms(w: World, phone: str = PHONE) -> float | None:
    conv = conversations.handlers.repo(w.store).find(phone, ANNA)
    return conv.last_mt_at if conv else None


# ---- the account's reply window ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "after", "state"),
    [
        (2, 2 * DAY - 3600, "mailed"),  # inside the account's shorter window
        (2, 2 * DAY + 60, "fallback"),  # past it, though inside the installation's 7 days
        (14, 13 * DAY, "mailed"),  # past the installation's 7 days, inside the account's 14
        (14, 14 * DAY + 60, "fallback"),
        (None, 7 * DAY - 3600, "mailed"),  # no own window: [replies] window_days
        (None, 7 * DAY + 60, "fallback"),
    ],
)
async def test_an_account_window_decides_whether_an_answer_is_matched(
    tmp_path: Path, days: float | None, after: float, state: str
) -> None:
    w = World(tmp_path, 'fallback_address = "ops@example.com"')
    send(w, account_id=account(w, days))
    w.now += after
    await w.mo("late answer")
    assert w.mo_states() == [state]


async def test_clearing_the_account_window_brings_back_the_default(tmp_path: Path) -> None:
    w = World(tmp_path, 'fallback_address = "ops@example.com"')
    send(w, account_id=account(w, 1))
    w.store.accounts.update_account("acme", reply_window_days=None)
    w.now += 3 * DAY
    await w.mo("answer")
    assert w.mo_states() == ["mailed"]


async def test_a_pool_number_stays_held_for_the_account_window(tmp_path: Path) -> None:
    # Bob's account keeps answers for 14 days: on day 10 his number is still his, so Anna gets the other.
    w = World(tmp_path, 'pool = ["+48500100200..+48500100201"]')
    bob_account = w.store.accounts.add_account("other").id
    w.store.accounts.update_account("other", reply_window_days=14)
    msg = NewMessage(PHONE, SENDER, "hi", 0, [NewPart(1, 0, b"hi", b"", "hi")])
    acc = Acceptance("bob@other.example", None, bob_account, None, None, None, "", "hi", [msg], 3600)
    opening = conversations.opening(
        w.config,  # type: ignore[arg-type]
        user_email="bob@other.example",
        account_id=bob_account,
        sender=SENDER,
        domains={PHONE: "sms.example.com"},
    )
    accept_now(w.store, acc, None, (), opening)
    w.now += 10 * DAY
    send(w)
    numbers = {c.user_email: c.number for c in conversations.handlers.repo(w.store).list_conversations(
        user=None, numbers=None, limit=5)}  # fmt: skip
    assert numbers["bob@other.example"] != numbers[ANNA]


async def test_conversations_are_kept_for_their_account_window_after_retention(tmp_path: Path) -> None:
    w = World(tmp_path)
    send(w, account_id=account(w, 30))
    send(w, phones=(OTHER_PHONE,))  # no account: the installation's 7 days
    retention = 90 * DAY

    def phones() -> set[str]:
        rows = conversations.handlers.repo(w.store).list_conversations(user=None, numbers=None, limit=5)
        return {c.phone for c in rows}

    w.now += retention + 7 * DAY + 60
    await purge_before(w.store, w.now - retention, reply_window=7 * DAY)
    assert phones() == {PHONE}
    w.now += 23 * DAY
    await purge_before(w.store, w.now - retention, reply_window=7 * DAY)
    assert phones() == set()


def test_the_account_window_is_set_shown_and_cleared_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "config.toml"
    conf.write_text(BASE.replace("[gateway]", f'[gateway]\nstate_dir = "{tmp_path}"'))

    def smsgw(*args: str) -> tuple[int, str]:
        code = main(["-c", str(conf), *args])
        out = capsys.readouterr()
        return code, out.out + out.err

    assert smsgw("account", "add", "acme", "--sender", "+48500100200")[0] == 0
    assert "reply window 7 days (default)" in smsgw("account", "list")[1]
    assert smsgw("account", "set", "acme", "--reply-window-days", "2.5")[0] == 0
    assert "reply window 2.5 days," in smsgw("account", "list")[1]
    code, out = smsgw("account", "set", "acme", "--reply-window-days", "soon")
    assert code != 0 and "--reply-window-days 'soon'" in out
    assert smsgw("account", "set", "acme", "--reply-window-days", "default")[0] == 0
    assert "reply window 7 days (default)" in smsgw("account", "list")[1]


# ---- a mail that queued nothing ----------------------------------------------------------------


async def test_a_mail_that_was_all_duplicates_leaves_its_conversation_alone(tmp_path: Path) -> None:
    w = World(tmp_path, 'fallback_address = "ops@example.com"')
    assert send(w, message_id="<m1@acme>") is not None
    first = last_sms(w)
    w.now += 6 * DAY
    assert send(w, message_id="<m1@acme>") is None  # the client sent it again: nothing queued
    assert last_sms(w) == first
    w.now += 2 * DAY  # 8 days after the only SMS the phone got: the window is over
    await w.mo("late answer")
    assert w.mo_states() == ["fallback"]


async def test_only_the_recipients_a_resent_mail_reaches_move_their_conversation(tmp_path: Path) -> None:
    w = World(tmp_path)
    send(w, message_id="<m1@acme>")
    first = last_sms(w)
    w.now += DAY
    assert send(w, message_id="<m1@acme>", phones=(PHONE, OTHER_PHONE)) is not None
    assert last_sms(w) == first and last_sms(w, OTHER_PHONE) == w.now


# ---- segments delivered again after their set was joined ---------------------------------------


async def test_a_segment_delivered_again_after_its_set_was_joined_is_not_mailed(tmp_path: Path) -> None:
    w = World(tmp_path)
    send(w)
    await w.mo("one ", concat=Concat(ref=9, total=2, seq=1))
    await w.mo("two", concat=Concat(ref=9, total=2, seq=2), acked=False)  # our ack of it was lost
    assert len(w.outbox()) == 1
    w.now += 30
    await w.mo("two", concat=Concat(ref=9, total=2, seq=2))  # so the SMSC delivers it again
    w.now += TIMEOUT_SECONDS + 1

    def expire() -> None:
        for mo_id in w.store.mo.join_stale_segments(w.now - TIMEOUT_SECONDS):
            w.events.whole_mo(mo_id)

    await w.store.write(expire)
    assert len(w.outbox()) == 1
    assert w.mo_states() == ["mailed", "duplicate"]
    # A new long text that happens to reuse the reference is still a new text.
    await w.mo("three ", concat=Concat(ref=9, total=2, seq=1))
    await w.mo("four", concat=Concat(ref=9, total=2, seq=2))
    assert [m.get_content().split("\n")[0] for _, _, m in w.outbox()] == ["one two", "three four"]


async def test_a_long_answer_sent_within_the_window_is_matched_when_joined_after_it(tmp_path: Path) -> None:
    # defect: the window was judged when the timeout joined an incomplete answer, five
    # minutes after it arrived, so an answer sent in the window's last minutes missed its user.
    w = World(tmp_path)
    send(w)
    w.now += 7 * DAY - 60  # one minute of the window left
    await w.mo("one ", concat=Concat(ref=4, total=3, seq=1))
    w.now += 1
    await w.mo("two ", concat=Concat(ref=4, total=3, seq=2))  # part 3 never comes
    w.now += TIMEOUT_SECONDS + 1  # the window is over when the timeout joins the two

    def expire() -> None:
        for mo_id in w.store.mo.join_stale_segments(w.now - TIMEOUT_SECONDS):
            w.events.whole_mo(mo_id)

    await w.store.write(expire)
    assert w.mo_states() == ["mailed"]
    # The joined row keeps the time it was written: a billing run between its parts and the join
    # (00:05 on the 1st) must find it in the next month, not in neither.
    joined = w.store.db.conn.execute("SELECT received_at FROM mo WHERE state = 'mailed'").fetchone()
    assert joined == (w.now,)
    ((kind, rcpt, msg),) = w.outbox()
    assert (kind, rcpt) == ("reply", ANNA) and msg.get_content().startswith("one two")


def _went(w: World, at: float) -> None:
    """The user's SMS went to the SMSC at `at` (it was held for quiet hours or an outage)."""
    w.store.db.conn.execute("UPDATE parts SET state = 'delivered', submitted_at = ?", (at,))


async def test_the_window_counts_from_when_the_sms_went_not_from_when_its_mail_came(tmp_path: Path) -> None:
    # answers within 7 days of the SMS. Accepted at T0 and held 20 hours, the SMS reached the
    # phone at T0+20h; its answer 6 days 6 hours later went to the fallback address, whose note said
    # that no SMS was sent within the window.
    w = World(tmp_path, 'fallback_address = "fb@example.com"')
    send(w)
    went = w.now + 20 * 3600
    _went(w, went)
    w.now = went + 6 * DAY + 6 * 3600
    await w.mo("Tak, pasuje")
    assert w.mo_states() == ["mailed"]
    assert [(k, r) for k, r, _ in w.outbox()] == [("reply", "anna@acme.example")]


async def test_an_answer_later_than_the_window_after_the_sms_went_goes_to_the_fallback(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, 'fallback_address = "fb@example.com"')
    send(w)
    went = w.now + 20 * 3600
    _went(w, went)
    w.now = went + 7 * DAY + 1
    await w.mo("Za pozno")
    assert w.mo_states() == ["fallback"]
    [(note,)] = w.store.db.conn.execute("SELECT note FROM mo").fetchall()
    assert note.startswith("the newest SMS to this phone from this number was anna@acme.example's"), note
    assert ", 7 days ago, past its reply window of 7 days: not mailed to them" in note, note
