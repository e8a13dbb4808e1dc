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

import time
from pathlib import Path

import pytest

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
