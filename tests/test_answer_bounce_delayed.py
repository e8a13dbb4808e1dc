"""A relay's delay warning of a phone's answer mail (RFC 3464 `Action: delayed`, a 4.x.x Status and
Will-Retry-Until: sendmail's queuewarn, Postfix's delay_warning_time, Exchange's) is no bounce: the
relay still holds the mail and delivers it when the recipient's server comes back.

It was taken as one: the answer mail failed, a "Not delivered" copy went to the fallback address, the
MO ended `fallback` and was billed so, while the user got the answer too. Now only the matched
recipient's own Action of failed (or a 5.x.x Status with no Action) fails it; a delay warning leaves it
`sent` and is forwarded with words that say so. A DSN reporting several recipients is read for the
answer's recipient alone. The real daemon, the simulator over SMPP answering as the phone, a real SMTP
sink as the relay, the DSNs delivered to the relay port from the account's network.
"""

from __future__ import annotations

import pytest

from tests.conftest import STAFF
from tests.test_answer_bounced_later import answer_mailed, body
from tests.test_bounces import delivered, parsed
from tests.test_own_numbers import FALLBACK
from tests.test_reply_refused import mo_row, outbox

OTHER = "ops@acme.example"


def report(answer_id: str, own_id: str, *blocks: tuple[str, str, str]) -> bytes:
    """A DSN quoting the answer mail's headers, one block per (recipient, Action, Status); an empty
    Action is left out."""
    fields = ""
    for rcpt, action, status in blocks:
        fields += f"\r\nFinal-Recipient: rfc822; {rcpt}\r\n" + (f"Action: {action}\r\n" if action else "")
        fields += f"Status: {status}\r\nDiagnostic-Code: smtp; {status} mx.acme.example said so\r\n"
        if action == "delayed":
            fields += "Will-Retry-Until: Sat, 12 Dec 2026 21:00:00 +0000\r\n"
    return (
        "From: MAILER-DAEMON@relay.example (Mail Delivery System)\r\nTo: smsgw@sms.example.com\r\n"
        f"Subject: Delivery Status Notification\r\nMessage-ID: {own_id}\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\nThis is a report of your message.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example\r\n"
        f"{fields}\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {answer_id}\r\nFrom: +48601222222@sms.example.com\r\nTo: {STAFF}\r\n\r\n--b--\r\n"
    ).encode()


@pytest.mark.parametrize(
    "blocks",
    [
        [(STAFF, "delayed", "4.4.1")],
        [(STAFF, "", "4.4.7")],  # no Action: its Status tells
        [(OTHER, "failed", "5.1.1"), (STAFF, "delayed", "4.4.1")],  # another recipient's failure
    ],
)
async def test_a_delay_warning_leaves_the_answer_sent(
    tmp_path: pytest.TempPathFactory, blocks: list[tuple[str, str, str]]
) -> None:
    async with answer_mailed(tmp_path) as (gw, relay, answer_id):
        before = mo_row(gw)
        sender = gw.config.mail.from_address
        said = await delivered(gw.port, report(answer_id, "<w1@relay.example>", *blocks), rcpt=sender)
        assert said.startswith("250 "), said
        await relay.wait(2)
        await gw.until(lambda: [state for *_, state in outbox(gw)] == ["sent", "sent"])
        assert outbox(gw) == [("reply", STAFF, "sent"), ("bounce-forward", FALLBACK, "sent")]
        assert mo_row(gw) == before
        text = " ".join(body(relay.messages[1][2]).split())
    assert relay.messages[1][1] == [FALLBACK]
    head = f"A delay warning of the mail with the answer from +48******222 to {STAFF} (MO 1)"
    assert text.startswith(head), text
    assert "keeps trying to deliver it (4.4." in text and "The answer stays sent and no copy goes" in text
    assert "Not delivered" not in text and "returned it" not in text


@pytest.mark.parametrize("action", ["failed", ""])  # no Action: a 5.x.x Status fails it
async def test_the_answers_own_failure_fails_it_whatever_other_recipients_say(
    tmp_path: pytest.TempPathFactory, action: str
) -> None:
    blocks = [(OTHER, "delayed", "4.4.1"), (STAFF, action, "5.1.1")]
    async with answer_mailed(tmp_path) as (gw, relay, answer_id):
        sender = gw.config.mail.from_address
        said = await delivered(gw.port, report(answer_id, "<f1@relay.example>", *blocks), rcpt=sender)
        assert said.startswith("250 "), said
        await gw.until(lambda: len(outbox(gw)) == 3)
        await relay.wait(3)
        kinds = [(kind, rcpt, state) for kind, rcpt, state in outbox(gw)]
        assert kinds[0] == ("reply", STAFF, "failed") and [k[0] for k in kinds[1:]] == [
            "reply-fallback",
            "bounce-forward",
        ]
        why = f"the mail to {STAFF} bounced after the mail relay took it"
        why += " (5.1.1 smtp; 5.1.1 mx.acme.example said so)"
        assert mo_row(gw) == ("fallback", f"{why}; sent to {FALLBACK}")
        subjects = [str(parsed(raw)["Subject"]) for *_, raw in relay.messages[1:]]
    assert any(s.startswith("SMS from") for s in subjects), subjects
