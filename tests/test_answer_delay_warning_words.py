"""A relay's delay warning of a phone's answer mail is forwarded as one, and read as one in plain text.

Its forward to the fallback address said the answer stays sent, under the Subject "Bounce received by
the SMS gateway: …" and a line "Why it is a bounce: …": it is named a delay warning in both now, in
either language. And a delay warning with no DSN part (Exim's plain-text "Warning: message … delayed
24 hours … has not yet been delivered … Delivery attempts will continue") still failed the answer,
sent its copy and billed it failed, while the relay went on and delivered it; it leaves the answer
sent now. A plain-text bounce that says the mail could not be delivered still fails it. The real
daemon, the simulator over SMPP answering as the phone, a real SMTP sink as the relay, the warnings
delivered to the relay port from the account's network.
"""

from __future__ import annotations

import pytest

from gateway import forwarded
from tests.conftest import STAFF
from tests.test_answer_bounce_delayed import report
from tests.test_answer_bounced_later import answer_mailed, body
from tests.test_bounces import delivered, parsed
from tests.test_own_numbers import FALLBACK
from tests.test_reply_refused import mo_row, outbox

SUBJECT = "Delay warning received by the SMS gateway: "


def plain(answer_id: str, subject: str, words: str) -> bytes:
    """A plain-text report from the relay's mail system, with no DSN part, quoting the answer's headers."""
    return (
        "From: Mail Delivery System <Mailer-Daemon@relay.example>\r\nTo: smsgw@sms.example.com\r\n"
        f"Subject: {subject}\r\nMessage-ID: <p1@relay.example>\r\nAuto-Submitted: auto-replied\r\n\r\n"
        "This message was created automatically by mail delivery software.\r\n"
        f"{words}\r\n\r\n  {STAFF}\r\n    SMTP error from remote mail server after RCPT TO:<{STAFF}>:\r\n"
        "    451 Temporary local problem - please try later\r\n\r\n"
        "------ This is a copy of the message's headers. ------\r\n\r\n"
        f"Message-ID: {answer_id}\r\nFrom: +48601222222@sms.example.com\r\nTo: {STAFF}\r\n"
    ).encode()


EXIM_DELAY = (
    "Warning: message 1abc-00 delayed 24 hours",
    "A message that you sent has not yet been delivered to one or more of its\r\nrecipients after more"
    " than 24 hours on the queue on relay.example.\r\n\r\nNo action is required on your part. Delivery"
    " attempts will continue for\r\nsome time, and this warning may be repeated at intervals if the"
    " message\r\nremains undelivered. Eventually the mail delivery software will give up.",
)
EXIM_FAILED = (
    "Mail delivery failed: returning message to sender",
    "A message that you sent could not be delivered to one or more of its\r\nrecipients. This is a"
    " permanent error. The following address(es) failed:",
)


@pytest.mark.parametrize("kind", ["dsn", "plain"])
async def test_a_delay_warning_leaves_the_answer_sent_and_is_forwarded_as_one(
    tmp_path: pytest.TempPathFactory, kind: str
) -> None:
    async with answer_mailed(tmp_path) as (gw, relay, answer_id):
        before = mo_row(gw)
        warning = (
            report(answer_id, "<w1@relay.example>", (STAFF, "delayed", "4.4.1"))
            if kind == "dsn"
            else plain(answer_id, *EXIM_DELAY)
        )
        said = await delivered(gw.port, warning, rcpt=gw.config.mail.from_address)
        assert said.startswith("250 "), said
        await relay.wait(2)
        await gw.until(lambda: [state for *_, state in outbox(gw)] == ["sent", "sent"])
        assert outbox(gw) == [("reply", STAFF, "sent"), ("bounce-forward", FALLBACK, "sent")]
        assert mo_row(gw) == before
        subject = str(parsed(relay.messages[1][2])["Subject"])
        text = " ".join(body(relay.messages[1][2]).split())
    assert subject.startswith(SUBJECT), subject
    assert "Why it is a delay warning: " in text and "Why it is a bounce" not in text, text
    assert text.startswith("A delay warning of the mail with the answer from"), text
    assert "The answer stays sent and no copy goes" in text


async def test_a_plain_text_bounce_of_the_answer_still_fails_it(tmp_path: pytest.TempPathFactory) -> None:
    async with answer_mailed(tmp_path) as (gw, relay, answer_id):
        said = await delivered(gw.port, plain(answer_id, *EXIM_FAILED), rcpt=gw.config.mail.from_address)
        assert said.startswith("250 "), said
        await gw.until(lambda: len(outbox(gw)) == 3)
        assert [kind for kind, *_ in outbox(gw)] == ["reply", "reply-fallback", "bounce-forward"]
        assert outbox(gw)[0][2] == "failed"
        await relay.wait(3)
        subjects = [str(parsed(raw)["Subject"]) for *_, raw in relay.messages[1:]]
    assert not any(s.startswith(SUBJECT) for s in subjects), subjects


def test_the_delay_warnings_forward_is_named_so_in_polish() -> None:
    raw = forwarded.bounce_forward(
        sender="smsgw@sms.example.com",
        rcpt=FALLBACK,
        domain="sms.example.com",
        subject="Delivery Status Notification",
        reason="DSN",
        mail_from="",
        client_ip="127.0.0.1",
        numbers=[],
        raw=b"Subject: x\r\n\r\nx\r\n",
        what="delay warning",
        lang="pl",
    )
    mail = parsed(raw)
    text = " ".join(str(mail.get_body(("plain",)).get_content()).split())
    assert str(mail["Subject"]).startswith("Bramka SMS otrzymała ostrzeżenie o opóźnieniu: "), mail["Subject"]
    assert "Dlaczego to ostrzeżenie o opóźnieniu: " in text and "zwrot" not in text, text
    assert mail[forwarded.FORWARD_MARK] == "bounce"  # read back as the gateway's own forward
