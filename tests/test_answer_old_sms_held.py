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
from zoneinfo import ZoneInfo

import pytest

from billing_reports.monthly import Month
from billing_reports.writer import write_month
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_leaver_new_holder import readd
from tests.test_own_numbers import FALLBACK, PHONE, own_config
from tests.test_quiet_hours_view import window
from tests.test_two_way import parsed

POOL = '"+48500100200", "+48500100201"'


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


async def phone_answers(gw: Any, sink: Any, text: str) -> tuple[list[str], str]:
    """The phone answers the SMS it got; (recipients, body) of the mail that carries the answer."""
    command = {"op": "mo", "reply_to_last": True, "text": text}
    assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
    await gw.until(lambda: bool(answers(sink)), timeout=30)
    [(rcpts, raw)] = answers(sink)
    return rcpts, parsed(raw).get_content()


def answers(sink: Any) -> list[tuple[list[str], bytes]]:
    """The mails from the phone's address (the held SMS's notice is no answer)."""
    return [
        (rcpts, raw)
        for _, rcpts, raw in sink.messages
        if parsed(raw)["From"].addresses[0].addr_spec == f"{PHONE}@{DOMAIN}"
    ]


def account_id(gw: Any, name: str) -> int:
    return int(gw.store.db.conn.execute("SELECT id FROM accounts WHERE name = ?", (name,)).fetchone()[0])


@pytest.mark.parametrize("pool", [POOL, ""], ids=["pool", "no-pool"])
@pytest.mark.parametrize(
    ("account", "why"),
    [
        ("other", f"it answers {STAFF}, who belongs to another account since"),
        ("acme", f"it answers an SMS {STAFF} sent before the address was added again as a user"),
    ],
    ids=["other-company", "successor"],
)
async def test_an_answer_to_the_old_sms_goes_to_the_fallback_while_the_new_holders_sms_is_held(
    tmp_path: Path, pool: str, account: str, why: str
) -> None:
    relay = free_port()
    cfg = own_config(tmp_path, "smpp", relay, pool=pool)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        await sent_then_held(gw, account)
        rcpts, body = await phone_answers(gw, sink, "Invoice 77 paid, my card ends 4242")
        assert rcpts == [FALLBACK], body
        assert "Invoice 77 paid" in body and "invoice 77 due" in body and "new promo" not in body
        state, note, billed = gw.store.db.conn.execute("SELECT state, note, account_id FROM mo").fetchone()
        assert (state, note) == ("fallback", why)
        assert billed == account_id(gw, "acme")  # the account whose SMS it answers, not the new holder's
        tz = ZoneInfo(cfg.gateway.timezone)
        files = write_month(gw.store.path, tmp_path / "state", Month.containing(time.time(), tz), tz)
        assert {f.account: mo_lines(f.path.read_text()) for f in files.accounts} == {"acme": 1, "other": 0}


def mo_lines(bill: str) -> int:
    """The MO-reply lines of an account's billing file (not its totals)."""
    return sum(1 for line in bill.splitlines() if line[:1].isdigit() and "\tMO-reply\t" in line)
