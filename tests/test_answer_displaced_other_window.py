"""An answer does not go back to a conversation a newer SMS displaced when the newer one's account has a
shorter reply window (R-3.1, R-3.3).

No pool: acme's user texts the phone on day 0, the other company's user on day 1, both from the
default sender; the other account's window is 3 days. Until day 4 the phone's answers go to the
other company's user, whose SMS it got last. On day 5 that window has closed: the answer, most likely
to that last SMS, goes to the fallback address naming it, as it does when both windows are 7 days.
It went to acme's user instead, quoting their day-0 SMS and billed to acme, as if never displaced,
and `conversation list` and the panel showed acme's conversation `open` again.

A real daemon with its built-in SMSC simulator over SMPP, real SMTP in, a real relay sink out, the
SQLite file, an injected clock.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.conversations import states
from gateway.conversations.queries import conversations_page
from tests.answer_world import World, world
from tests.conftest import DOMAIN, STAFF, mail
from tests.test_own_numbers import FALLBACK, answer
from tests.test_quiet_hours_view import window
from tests.test_two_way import BOB

DAY = 86400.0
ANNA_SMS = "Acme: your order 41 is ready"
BOB_SMS = "Other: renew the contract?"


async def texted(w: World, sender: str, body: str) -> None:
    """`sender`'s SMS to the phone, once it has reached it (its report in)."""
    gw, core = w.gw, w.gw.daemon.simulator.core
    sent = len(core.records)
    msg = mail(f"601222222@{DOMAIN}", body=body, subject=f"From {sender}")
    msg.replace_header("From", sender)
    assert (await gw.send(msg, sender=sender)).error is None
    await gw.until(lambda: len(core.records) == sent + 1)
    await gw.until(lambda: "submitted" not in gw.states() and "queued" not in gw.states())


async def answered(w: World, text: str, count: int) -> tuple[list[str], str]:
    """The phone's answer to our number: whom its mail went to, and the mail's text."""
    await answer(w.gw, "smpp", w.ours, 1, text)
    await w.gw.until(lambda: len(w.answers()) == count)
    rcpts, msg = w.answers()[-1]
    return rcpts, msg.get_body(("plain",)).get_content()


def listed(w: World) -> dict[str, str]:
    """The operator's conversation states (as `conversation list` and the panel tell them) as user → state."""
    conn = w.gw.store.db.conn
    own = {int(i): days for i, days in conn.execute("SELECT id, reply_window_days FROM accounts")}
    rows = conversations_page(conn, None, limit=100)
    found = states.listed(w.cfg, conn, rows, own, w.now[0])
    return {
        c.user_email: states.told(s, c, conn, FALLBACK, w.now[0]) for c, s in zip(rows, found, strict=True)
    }


async def test_the_answer_past_the_newer_sms_window_goes_to_the_fallback_not_the_displaced_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path, monkeypatch) as w:
        store = w.gw.store
        await store.write(lambda: store.accounts.update_account("other", reply_window_days=3))
        await texted(w, STAFF, ANNA_SMS)
        w.now[0] += DAY
        await texted(w, BOB, BOB_SMS)

        w.now[0] += DAY  # day 2: both windows open, the newer SMS's user gets it
        rcpts, _ = await answered(w, "Tak, przedluzam", 1)
        assert rcpts == [BOB]
        told = listed(w)
        assert told[STAFF].startswith("displaced") and told[BOB] == "open", told

        w.now[0] += 3 * DAY  # day 5: the other account's 3 days have passed, acme's 7 have not
        rcpts, body = await answered(w, "A jednak nie", 2)
        assert rcpts == [FALLBACK], body
        assert ANNA_SMS not in body  # not quoted as if the phone answered acme's old SMS
        state, note, billed, _ = w.last_mo()
        assert state == "fallback", note
        # Not "no SMS was sent ... within the reply window (7 days ...)", as acme's 7 days had not passed.
        assert note.startswith(f"the newest SMS to this phone from this number was {BOB}'s (other)"), note
        assert (
            ", 4 days ago, past its reply window of 3 days: not mailed to them, as the number may have"
            f" changed hands; {STAFF}'s older SMS is not answered past a newer one"
        ) in note, note
        assert "within the reply window" not in note, note
        assert billed is None  # not acme's traffic
        told = listed(w)
        assert told[STAFF].startswith("displaced") and told[BOB] == "closed", told


async def test_a_newer_sms_long_past_its_window_still_displaced_the_older_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acme's window is 60 days: the answer on day 40 came long after the other company's 3 days
    (and after the longest an SMS may wait to go), yet the phone got that SMS after acme's."""
    async with world(tmp_path, monkeypatch) as w:
        store = w.gw.store

        def windows() -> None:
            store.accounts.update_account("acme", reply_window_days=60)
            store.accounts.update_account("other", reply_window_days=3)

        await store.write(windows)
        await texted(w, STAFF, ANNA_SMS)
        w.now[0] += DAY
        await texted(w, BOB, BOB_SMS)
        w.now[0] += 39 * DAY
        rcpts, body = await answered(w, "Dopiero teraz odpisuje", 1)
        assert rcpts == [FALLBACK], body
        state, note, billed, _ = w.last_mo()
        assert state == "fallback" and f"was {BOB}'s (other)" in note and billed is None, note
        told = listed(w)
        assert told[STAFF].startswith("displaced") and told[BOB] == "closed", told


async def never_went(w: World, sender: str, account: str, body: str) -> None:
    """`sender`'s bulk SMS to the phone, held for `account`'s quiet hours (set around the daemon's
    clock), then cancelled by the admin: the phone never gets it, though the row moves on with its mail."""
    gw, store = w.gw, w.gw.store
    start, end = window(2, datetime.fromtimestamp(w.now[0], ZoneInfo("Europe/Warsaw")))
    await store.write(lambda: store.accounts.update_account(account, quiet_start=start, quiet_end=end))
    msg = mail(f"601222222@{DOMAIN}", body=body, subject=f"From {sender}", Precedence="bulk")
    msg.replace_header("From", sender)
    assert (await gw.send(msg, sender=sender)).error is None
    [(held, due)] = store.db.conn.execute(
        "SELECT m.id, p.next_attempt_at FROM messages m JOIN parts p ON p.message_id = m.id"
        " WHERE m.text LIKE ?",
        (f"%{body}%",),
    ).fetchall()
    assert due > w.now[0] + 3600  # held until the quiet hours end
    await store.write(lambda: store.admin.cancel_message(held, claimed="end"))
    await store.write(lambda: store.accounts.update_account(account, quiet_start=None, quiet_end=None))


@pytest.mark.parametrize("day", [20, 38], ids=["past-its-window", "within-its-window"])
async def test_a_newer_sms_still_displaced_the_older_one_when_its_users_next_sms_never_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, day: int
) -> None:
    """The other company's user mails the phone again on `day`; that SMS is cancelled unsent. The
    answer on day 40 went to acme's user, quoting their day-0 SMS and billed to acme, as if the
    other company's day-1 SMS (which the phone got after it) had never been sent: its row's latest
    SMS read as unsent, and its older one that went was not looked for."""
    async with world(tmp_path, monkeypatch) as w:
        store = w.gw.store

        def windows() -> None:
            store.accounts.update_account("acme", reply_window_days=60)
            store.accounts.update_account("other", reply_window_days=3)

        await store.write(windows)
        t0 = w.now[0]
        await texted(w, STAFF, ANNA_SMS)
        w.now[0] = t0 + DAY
        await texted(w, BOB, BOB_SMS)
        w.now[0] = t0 + day * DAY
        await never_went(w, BOB, "other", "Other: one more offer")
        w.now[0] = t0 + 40 * DAY
        rcpts, body = await answered(w, "Dopiero teraz odpisuje", 1)
        assert rcpts == [FALLBACK], body
        assert ANNA_SMS not in body
        state, note, billed, _ = w.last_mo()
        assert state == "fallback" and billed is None, note


async def test_an_answer_after_the_clock_stepped_back_goes_to_the_sms_just_sent_not_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other company's user texted the phone 40 days ago (their window: 7 days); acme's window
    is 60. Acme's user texts it now, the clock steps back an hour, and the phone answers. The old
    row, read back to acme's 60 days, stopped the read of acme's SMS to its end and was taken as the
    SMS the phone answers, its window closed: the answer went to the fallback address."""
    async with world(tmp_path, monkeypatch) as w:
        store = w.gw.store
        await store.write(lambda: store.accounts.update_account("acme", reply_window_days=60))
        await texted(w, BOB, BOB_SMS)
        w.now[0] += 40 * DAY
        await texted(w, STAFF, ANNA_SMS)
        w.now[0] -= 3600
        rcpts, body = await answered(w, "Tak, dziekuje", 1)
        assert rcpts == [STAFF], body
        assert ANNA_SMS in body and BOB_SMS not in body
        state, note, billed, _ = w.last_mo()
        assert state == "mailed" and billed == w.account_id("acme"), note


async def test_displaced_says_its_answers_are_recorded_only_when_there_is_no_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no `[replies] fallback_address`, the other states say the answers are recorded only; a
    displaced one promised them "to the fallback address"."""
    async with world(tmp_path, monkeypatch) as w:
        await texted(w, STAFF, ANNA_SMS)
        w.now[0] += DAY
        await texted(w, BOB, BOB_SMS)
        conn = w.gw.store.db.conn
        rows = conversations_page(conn, None, limit=100)
        found = states.listed(w.cfg, conn, rows, {}, w.now[0])
        told = {
            c.user_email: states.told(s, c, conn, None, w.now[0]) for c, s in zip(rows, found, strict=True)
        }
        assert told[STAFF].startswith("displaced"), told
        assert "fallback address" not in told[STAFF].replace("fallback_address", ""), told
        assert "recorded only" in told[STAFF] and "no [replies] fallback_address" in told[STAFF], told


async def test_a_newer_sms_past_a_window_under_a_day_is_named_with_its_hours_and_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other account's window is half a day: 13 hours after its SMS the note said "0 days ago,
    past the reply window", after "no SMS was sent ... within the reply window (7 days ...)"."""
    async with world(tmp_path, monkeypatch) as w:
        store = w.gw.store
        await store.write(lambda: store.accounts.update_account("other", reply_window_days=0.5))
        await texted(w, STAFF, ANNA_SMS)
        w.now[0] += DAY
        await texted(w, BOB, BOB_SMS)
        w.now[0] += 13 * 3600
        rcpts, body = await answered(w, "Za pozno", 1)
        assert rcpts == [FALLBACK], body
        _, note, _, _ = w.last_mo()
        assert note.startswith(f"the newest SMS to this phone from this number was {BOB}'s (other)"), note
        assert (
            ", 13 hours ago, past its reply window of 0.5 days: not mailed to them, as the number may"
            f" have changed hands; {STAFF}'s older SMS is not answered past a newer one"
        ) in note, note


def test_the_newest_sms_note_reads_in_polish() -> None:
    from gateway import polish

    note = (
        f"the newest SMS to this phone from this number was {BOB}'s (other) on 2027-01-02 10:00, 13 hours"
        " ago, past its reply window of 0.5 days: not mailed to them, as the number may have changed hands;"
        f" {STAFF}'s older SMS is not answered past a newer one"
    )
    assert polish.note_words(note, "pl") == (
        f"ostatni SMS z tego numeru na ten telefon wysłał(a) {BOB} (konto other) dnia 2027-01-02 10:00,"
        " 13 godzin temu, po czasie na odpowiedź (0,5 dnia): nie przesłano tej osobie, bo numer mógł"
        f" zmienić właściciela; odpowiedź nie trafia do starszego SMS-a od {STAFF} z pominięciem nowszego"
    )
