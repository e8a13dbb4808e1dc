"""A phone's answer whose mail the user's server refused (or bounced later) is `failed` on the
company's bill, with the reason, not `delivered` (R-5.2).

Its copy went to the fallback address, and `smsgw mo list` and the panel said the mail was refused,
yet the company's billing file listed the MO-reply line `delivered` with no reason: the company
never got it. A premium MO whose client's address refused it is billed `failed` the same way. An
answer sent to the fallback because no user was left to take it stays `delivered`
(`test_billing_answer_gone.py`). A real daemon with its built-in SMSC simulator over SMPP, real SMTP
in, a real relay that refuses at RCPT or takes the mail, a DSN delivered to the relay port as the
smarthost delivers it, the month's file written from the SQLite file and read back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from billing_reports.monthly import Month
from billing_reports.writer import write_month
from tests.billing_reader import read
from tests.conftest import STAFF, free_port, running_gateway, smtp_sink
from tests.test_answer_bounced_later import dsn
from tests.test_bounces import delivered, parsed
from tests.test_own_numbers import FALLBACK, own_config
from tests.test_reply_refused import USER_UNKNOWN, RefusingRelay, mo_row, outbox, sms_and_answer


def replies(gw: Any, tmp_path: Path) -> list[tuple[str, str]]:
    """(status, reason) of each MO-reply line of acme's file of the month now."""
    tz = ZoneInfo(gw.config.gateway.timezone)
    files = write_month(gw.store.path, tmp_path / "state", Month.containing(gw.store.clock(), tz), tz)
    [acme] = [f for f in files.accounts if f.account == "acme"]
    billed = read(acme.path.read_bytes())
    return [(r["status"], r["reason"]) for r in billed.sms if r["kind"] == "MO-reply"]


async def test_an_answer_the_users_server_refused_is_billed_failed_with_the_reason(tmp_path: Path) -> None:
    port = free_port()
    async with (
        smtp_sink(port, RefusingRelay(STAFF)),
        running_gateway(own_config(tmp_path, "smpp", port)) as gw,
    ):
        await sms_and_answer(gw)
        await gw.until(lambda: ("reply", STAFF, "failed") in outbox(gw))
        refusal = f"the mail relay refused the mail to {STAFF} ({USER_UNKNOWN.format(STAFF)})"
        assert mo_row(gw) == ("fallback", f"{refusal}; sent to {FALLBACK}")
        assert replies(gw, tmp_path) == [("failed", f"{refusal}; sent to {FALLBACK}")]


async def test_an_answer_bounced_later_is_billed_failed_and_one_mailed_stays_delivered(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with smtp_sink(port) as relay, running_gateway(own_config(tmp_path, "smpp", port)) as gw:
        await sms_and_answer(gw)
        await gw.until(lambda: outbox(gw) == [("reply", STAFF, "sent")])
        assert replies(gw, tmp_path) == [("delivered", "")]  # mailed: the company got it
        await relay.wait(1)
        answer_id = parsed(relay.messages[0][2])["Message-ID"]
        sent = await delivered(
            gw.port, dsn(answer_id, "<d1@mx.acme.example>"), rcpt=gw.config.mail.from_address
        )
        assert sent.startswith("250 "), sent
        await gw.until(lambda: len(outbox(gw)) == 3)
        said = (
            f"the mail to {STAFF} bounced after the mail relay took it (5.2.2 smtp; 552 5.2.2 Mailbox full)"
        )
        assert replies(gw, tmp_path) == [("failed", f"{said}; sent to {FALLBACK}")]
