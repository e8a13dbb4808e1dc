"""An answer to an SMS its user sent before the address changed hands, while the new holder's SMS to
the same phone is still held (R-3.1, R-3.3, R-5.2).

The conversation row moves on when a mail is accepted, long before its SMS may leave. The phone
answers the SMS it got: the old one, whose sender is gone (moved to another company's account, or
the address given to a successor). That answer went to the address's new holder, quoting the old
SMS, billed to the new account. It goes to the fallback address, billed to the account whose SMS it
answers, as it does when the new holder has not written since.

A real daemon with its built-in SMSC simulator over SMPP, real SMTP in, a real relay sink out, the
billing file written from the SQLite file. Quiet hours are read off the wall clock: the window is
set around the hour the test runs at.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from smsc.simulator.control import send_command
from tests.answer_world import POOL, WHY, World, world
from tests.conftest import DOMAIN, STAFF, mail
from tests.test_leaver_new_holder import readd
from tests.test_own_numbers import FALLBACK
from tests.test_quiet_hours_view import window


async def sent_then_held(gw: Any, account: str) -> None:
    """STAFF's SMS reaches the phone; the address is given to `account`'s new holder, whose bulk SMS
    to the same phone is held for quiet hours."""
    core = gw.daemon.simulator.core
    first = mail(f"601222222@{DOMAIN}", body="invoice 77 due", subject="Acme invoice")
    assert (await gw.send(first)).error is None
    await gw.until(lambda: len(core.records) == 1)
    await readd(gw, STAFF, account)
    start, end = window(2)
    await gw.store.write(lambda: gw.store.accounts.update_account(account, quiet_start=start, quiet_end=end))
    promo = mail(f"601222222@{DOMAIN}", body="new promo", subject="Promo", Precedence="bulk")
    assert (await gw.send(promo)).error is None
    [(due,)] = gw.store.db.conn.execute(
        "SELECT p.next_attempt_at FROM parts p JOIN messages m ON m.id = p.message_id"
        " WHERE m.text LIKE '%new promo%'"
    ).fetchall()
    assert due > time.time() + 3600  # held until the window's end: the phone never got it


async def phone_answers(w: World, text: str) -> tuple[list[str], str]:
    """The phone answers the SMS it got; (recipients, body) of the mail that carries the answer."""
    command = {"op": "mo", "reply_to_last": True, "text": text}
    assert (await send_command("127.0.0.1", w.gw.daemon.simulator.control_port, command))["ok"]
    await w.gw.until(lambda: bool(w.answers()), timeout=30)
    [(rcpts, msg)] = w.answers()
    return rcpts, msg.get_content()


@pytest.mark.parametrize("pool", [POOL, ""], ids=["pool", "no-pool"])
@pytest.mark.parametrize(
    ("account", "why"),
    [("other", WHY["other-company"]), ("acme", WHY["successor"])],
    ids=["other-company", "successor"],
)
async def test_an_answer_to_the_old_sms_goes_to_the_fallback_while_the_new_holders_sms_is_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: str, account: str, why: str
) -> None:
    async with world(tmp_path, monkeypatch, pool=pool, wall_clock=True) as w:
        await sent_then_held(w.gw, account)
        rcpts, body = await phone_answers(w, "Invoice 77 paid, my card ends 4242")
        assert rcpts == [FALLBACK], body
        assert "Invoice 77 paid" in body and "invoice 77 due" in body and "new promo" not in body
        state, note, billed, _ = w.last_mo()
        assert (state, note) == ("fallback", why)
        assert billed == w.account_id("acme")  # the account whose SMS it answers, not the new holder's
        assert w.billed() == {"acme": 1, "other": 0}
