"""A pool number two companies' SMS reached the phone from is shared by the SMS, not by the accounts the
conversation rows say now (R-3.2, R-3.3).

With the pool run out, acme's user took the number another company's user had texted the phone from:
the phone's answers on it may be to either, and go to the fallback address. Then that other user was
moved to acme and texted the phone again, held for quiet hours. Their conversation row now says
acme, and the number was taken as acme's alone: the answer went to acme's user, though the phone
still had the other company's SMS from that number and may be answering it.

A real daemon with its built-in SMSC simulator over SMPP, real SMTP in, a real relay sink out, the
SQLite file. Quiet hours are read off the wall clock: the window is set around the hour the test runs at.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from gateway.conversations import reached
from gateway.conversations.pool import shared_with
from gateway.conversations.rows import COLUMNS, SINCE, Conversation
from gateway.store.freshscript import STATEMENTS
from smsc.simulator.control import send_command
from tests.answer_world import world
from tests.conftest import DOMAIN, mail
from tests.test_leaver_new_holder import readd
from tests.test_own_numbers import FALLBACK
from tests.test_quiet_hours_view import window
from tests.test_two_way import BOB


async def test_an_answer_on_a_number_another_companys_sms_came_from_goes_to_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path, monkeypatch, pool='"+48500100200"', wall_clock=True) as w:
        gw, core = w.gw, w.gw.daemon.simulator.core
        bob = mail(f"601222222@{DOMAIN}", body="Oferta od innej firmy", subject="Oferta")
        bob.replace_header("From", BOB)
        assert (await gw.send(bob, sender=BOB)).error is None
        await gw.until(lambda: len(core.records) == 1)
        anna = mail(f"601222222@{DOMAIN}", body="invoice 77 due", subject="Acme invoice")
        assert (await gw.send(anna)).error is None  # takes the pool's one number: shared
        await gw.until(lambda: len(core.records) == 2)
        await readd(gw, BOB, "acme")  # the other company's user moves to acme
        start, end = window(2)
        await gw.store.write(
            lambda: gw.store.accounts.update_account("acme", quiet_start=start, quiet_end=end)
        )
        again = mail(f"601222222@{DOMAIN}", body="new promo", subject="Promo", Precedence="bulk")
        again.replace_header("From", BOB)
        assert (await gw.send(again, sender=BOB)).error is None
        [(due,)] = gw.store.db.conn.execute(
            "SELECT p.next_attempt_at FROM parts p JOIN messages m ON m.id = p.message_id"
            " WHERE m.text LIKE '%new promo%'"
        ).fetchall()
        assert due > time.time() + 3600  # held: the phone never got it
        command = {"op": "mo", "reply_to_last": True, "text": "Zaplacone"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await gw.until(lambda: bool(w.answers()), timeout=30)
        [(rcpts, msg)] = w.answers()
        assert rcpts == [FALLBACK], msg.get_content()  # not acme's user: the other company's SMS may be it
        state, note, billed, _ = w.last_mo()
        assert state == "fallback" and "the reply pool ran out" in note, note
        assert billed is None  # either company's: billed to neither


DAY = 86400.0
NOW = 100 * DAY
PHONE, NUMBER, WINDOW = "+48601222222", "+48500100200", 7 * DAY


def sms(conn: sqlite3.Connection, who: str, account: int, at: float, sent: bool) -> None:
    """An SMS of `who` (of `account`) to the phone from the pool number, reached the phone or held."""
    e = conn.execute(
        "INSERT INTO emails (account_id, mail_from, text, received_at) VALUES (?,?,?,?)",
        (account, who, "t", at),
    ).lastrowid
    m = conn.execute(
        "INSERT INTO messages (email_id, account_id, recipient, source, text, coding, parts_total,"
        " state, created_at, expires_at) VALUES (?,?,?,?,?,0,1,'x',?,?)",
        (e, account, PHONE, NUMBER, f"sms of {who} at {at / DAY:g}d", at, at + DAY),
    ).lastrowid
    conn.execute(
        "INSERT INTO parts (message_id, seq, state, next_attempt_at, expires_at, destination, source,"
        " data_coding, payload, udh, text, submitted_at) VALUES (?,1,?,0,0,?,?,0,x'',x'','t',?)",
        (m, "submitted" if sent else "queued", PHONE, NUMBER, at + 1 if sent else None),
    )


def conv(conn: sqlite3.Connection, who: str, account: int, started: float, last: float) -> None:
    conn.execute(
        "INSERT INTO conversations (phone, number, user_email, account_id, domain, text, started_at,"
        " last_mt_at) VALUES (?,?,?,?,'d','t',?,?)",
        (PHONE, NUMBER, who, account, started, last),
    )


def test_an_old_companys_sms_sent_before_the_window_does_not_share_the_number() -> None:
    # A user moved here from another company, their SMS from there 9 days old (its window closed);
    # a colleague texts the phone from the same pool number, then the moved user (held: quiet hours).
    conn = sqlite3.connect(":memory:")
    for s in STATEMENTS:
        conn.execute(s)
    conn.execute("INSERT INTO accounts (id, name, created_at) VALUES (1, 'acme', 0), (2, 'other', 0)")
    u, v = "moved@x.example", "colleague@acme.example"
    sms(conn, u, 2, NOW - 9 * DAY, sent=True)  # U at company 2: went 9 days ago, its window closed
    sms(conn, v, 1, NOW - 0.2 * DAY, sent=True)  # V (acme) texts the phone: reached it
    sms(conn, u, 1, NOW - 0.1 * DAY, sent=False)  # U, moved to acme, texts again: held (quiet hours)
    conv(conn, u, 1, NOW - 0.1 * DAY, NOW - 0.1 * DAY)
    conv(conn, v, 1, NOW - 0.2 * DAY, NOW - 0.2 * DAY)
    rows = conn.execute(f"SELECT {COLUMNS}, {SINCE} FROM conversations", (NOW, WINDOW)).fetchall()
    live = [(Conversation(*r[:-1]), float(r[-1])) for r in rows]
    scan = reached.messages_to(conn, PHONE, NOW - WINDOW - reached.HOLD_SECONDS, NOW, [u, v])
    answered = reached.answered(live, scan, NOW, "PL")
    assert answered is not None and answered.user_email == v and answered.account_id == 1  # V's SMS
    # U's SMS of the other company went before its window: it tells nothing of who holds the number
    # now. Counted, V's answer went to the fallback address, "the reply pool ran out".
    assert shared_with(conn, answered, NOW, WINDOW, "PL") == []
