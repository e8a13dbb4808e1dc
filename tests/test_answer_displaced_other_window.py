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

from pathlib import Path

import pytest

from gateway.conversations import states
from gateway.web.services import conversations_page
from tests.answer_world import World, world
from tests.conftest import DOMAIN, STAFF, mail
from tests.test_own_numbers import FALLBACK, answer
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
    rows = conversations_page(conn, None)
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
        assert f"the last SMS to this phone from this number was {BOB}'s (other)" in note
        assert "past the reply window" in note
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
