"""A phone's opt-out answer (STOP) whose mail to its user was refused or bounced is what any answer
in that case is: its copy at the fallback address, `fallback` on the Answers page and in `mo list`,
`failed` on the company's bill with the reason (R-5.2).

An ordinary answer whose mail the user's server refused turned `fallback` and was billed `failed`
(`test_billing_answer_refused.py`); a STOP stayed `optout`, read as mailed: `delivered` on the bill
with no reason, the page saying nothing went wrong but in its note. The number is on the opt-out list
all the same, and the note still says so. A real daemon with its SMPP simulator, real SMTP in, a
real relay refusing at RCPT or taking the mail and a DSN delivered to the relay port.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.conversations.queries import account_answers
from tests.conftest import STAFF, free_port, running_gateway, smtp_sink
from tests.test_answer_bounced_later import dsn
from tests.test_billing_answer_refused import replies
from tests.test_bounces import delivered, parsed
from tests.test_own_numbers import FALLBACK, own_config
from tests.test_reply_refused import USER_UNKNOWN, RefusingRelay, mo_row, outbox, sms_and_answer

OPTED_OUT = "+48 601 222 222 answered with an opt-out word: further SMS to it are refused"


def page_state(gw: Any) -> str:
    """The state the account's Answers page shows for its one answer."""
    [acme] = [a for a in gw.store.accounts.list_accounts() if a.name == "acme"]
    [row] = account_answers(gw.store.db.conn, acme.id, 10)
    return str(row["state"])


def opted_out(gw: Any) -> bool:
    return (
        gw.store.db.conn.execute("SELECT 1 FROM optouts WHERE number = '+48601222222'").fetchone() is not None
    )


async def test_a_stop_whose_mail_was_refused_is_billed_failed_as_any_answer(tmp_path: Path) -> None:
    port = free_port()
    async with (
        smtp_sink(port, RefusingRelay(STAFF)),
        running_gateway(own_config(tmp_path, "smpp", port)) as gw,
    ):
        await sms_and_answer(gw, "STOP")
        await gw.until(lambda: ("reply", STAFF, "failed") in outbox(gw))
        refusal = f"the mail relay refused the mail to {STAFF} ({USER_UNKNOWN.format(STAFF)})"
        state, note = mo_row(gw)
        assert (state, page_state(gw)) == ("fallback", "fallback"), note
        assert note.startswith(OPTED_OUT) and note.endswith(f"{refusal}; sent to {FALLBACK}"), note
        [(status, reason)] = replies(gw, tmp_path)
        assert status == "failed" and reason.endswith(f"{refusal}; sent to {FALLBACK}"), reason
        assert opted_out(gw)


async def test_a_stop_bounced_later_is_billed_failed_and_delivered_before(tmp_path: Path) -> None:
    port = free_port()
    async with smtp_sink(port) as relay, running_gateway(own_config(tmp_path, "smpp", port)) as gw:
        await sms_and_answer(gw, "STOP")
        await gw.until(lambda: outbox(gw) == [("reply", STAFF, "sent")])
        assert (mo_row(gw)[0], replies(gw, tmp_path)) == ("optout", [("delivered", "")])
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
        assert (mo_row(gw)[0], page_state(gw)) == ("fallback", "fallback")
        [(status, reason)] = replies(gw, tmp_path)
        assert status == "failed" and reason.endswith(f"{said}; sent to {FALLBACK}"), reason
        assert opted_out(gw)
