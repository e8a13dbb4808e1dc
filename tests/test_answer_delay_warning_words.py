"""A relay's delay warning of a phone's answer mail is forwarded as one, and read as one in plain text.

Its forward to the fallback address said the answer stays sent, under the Subject "Bounce received by
the SMS gateway: …" and a line "Why it is a bounce: …": it is named a delay warning in both now, in
either language. And a delay warning with no DSN part (Exim's plain-text "Warning: message … delayed
24 hours … has not yet been delivered … Delivery attempts will continue") still failed the answer,
sent its copy and billed it failed, while the relay went on and delivered it; it leaves the answer
sent now. A plain-text bounce that says the mail could not be delivered still fails it.
Gmail's ("Delivery Status Notification (Delay)": "You'll be notified if the delivery fails
permanently") and Postfix's ("Delayed Mail (still being retried)": "Your message could not be
delivered for more than 4 hour(s)") plain-text delay warnings failed the answer too, their conditions
read as failure words: a Subject that names a delay decides now, and a condition is no failure. The real
daemon, the simulator over SMPP answering as the phone, a real SMTP sink as the relay, the warnings
delivered to the relay port from the account's network.
"""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import compat32

import pytest

from gateway import forwarded
from gateway.answerbounce import outcome
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


EXIM_DELAY_WORDS = (
    "A message that you sent has not yet been delivered to one or more of its\r\nrecipients after more"
    " than 24 hours on the queue on relay.example.\r\n\r\nNo action is required on your part. Delivery"
    " attempts will continue for\r\nsome time, and this warning may be repeated at intervals if the"
    " message\r\nremains undelivered. Eventually the mail delivery software will give up."
)
EXIM_DELAY = ("Warning: message 1abc-00 delayed 24 hours", EXIM_DELAY_WORDS)
EXIM_FAILED_WORDS = (
    "A message that you sent could not be delivered to one or more of its\r\nrecipients. This is a"
    " permanent error. The following address(es) failed:"
)
EXIM_FAILED = ("Mail delivery failed: returning message to sender", EXIM_FAILED_WORDS)


# Gmail's and Postfix's delay warnings as they write them; each names the failure it is not.
GMAIL_DELAY = (
    "Delivery Status Notification (Delay)",
    "** Delivery incomplete **\r\n\r\nThere was a temporary problem delivering your message to"
    f" {STAFF}. Gmail will retry for 46 more hours. You'll be notified if the delivery fails"
    " permanently.\r\n\r\nLEARN MORE\r\n\r\nThe response was:\r\n\r\nThe recipient server did not"
    " accept our requests to connect. Learn more at https://support.google.com/mail/answer/7720"
    " [mx.firma.example 192.0.2.25: timed out]",
)
POSTFIX_DELAY = (
    "Delayed Mail (still being retried)",
    "This is the mail system at host relay.example.\r\n\r\n"
    "####################################################################\r\n"
    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
    "####################################################################\r\n\r\n"
    "Your message could not be delivered for more than 4 hour(s).\r\n"
    "It will be retried until it is 5 day(s) old.\r\n\r\n"
    "For further assistance, please send mail to postmaster.\r\n\r\n"
    "If you do so, please include this problem report. You can\r\n"
    "delete your own text from the attached returned message.\r\n\r\n"
    "                   The mail system\r\n\r\n"
    f"<{STAFF}>: connect to mx.firma.example[192.0.2.25]:25: Connection timed out",
)
SENDMAIL_DELAY = (
    "Warning: could not send message for past 4 hours",
    "    **********************************************\r\n"
    "    **      THIS IS A WARNING MESSAGE ONLY      **\r\n"
    "    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **\r\n"
    "    **********************************************\r\n\r\n"
    "The original message was received at Mon, 7 Dec 2026 10:00:00 +0100\r\n"
    "from localhost [127.0.0.1]\r\n\r\n"
    "This message could not be delivered for more than 4 hours and will be retried.",
)
GMAIL_FAILED = (
    "Delivery Status Notification (Failure)",
    f"** Message not delivered **\r\n\r\nThere was a problem delivering your message to {STAFF}."
    " Gmail will not retry. The recipient server did not accept our requests to connect, and the"
    " delivery has failed permanently.",
)
POSTFIX_FAILED = (
    "Undelivered Mail Returned to Sender",
    "This is the mail system at host relay.example.\r\n\r\nI'm sorry to have to inform you that your"
    " message could not be delivered to one or more recipients. It's attached below.\r\n\r\n"
    "If you do so, please include this problem report.",
)


def quoting(answer_id: str, subject: str, words: str) -> bytes:
    """A plain-text report from the relay's mail system, with no DSN part: `words`, then the answer's
    headers below Gmail's "----- Original message -----"."""
    return (
        "From: Mail Delivery Subsystem <mailer-daemon@relay.example>\r\nTo: smsgw@sms.example.com\r\n"
        f"Subject: {subject}\r\nMessage-ID: <p2@relay.example>\r\nAuto-Submitted: auto-replied\r\n\r\n"
        f"{words}\r\n\r\n----- Original message -----\r\n\r\n"
        f"Message-ID: {answer_id}\r\nFrom: +48601222222@sms.example.com\r\nTo: {STAFF}\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("words", "kind"),
    [
        (GMAIL_DELAY, "delayed"),
        (POSTFIX_DELAY, "delayed"),
        (SENDMAIL_DELAY, "delayed"),
        (EXIM_DELAY, "delayed"),
        (GMAIL_FAILED, "failed"),
        (POSTFIX_FAILED, "failed"),
        (EXIM_FAILED, "failed"),
    ],
    ids=["gmail-delay", "postfix-delay", "sendmail-delay", "exim-delay", "gmail", "postfix", "exim"],
)
def test_plain_text_delay_warnings_and_bounces_as_their_servers_write_them(
    words: tuple[str, str], kind: str
) -> None:
    msg = BytesParser(policy=compat32).parsebytes(quoting("<a1.sms-reply@sms.example.com>", *words))
    assert outcome(msg, STAFF) == (kind, words[0])


@pytest.mark.parametrize("kind", ["dsn", "plain", "gmail", "postfix"])
async def test_a_delay_warning_leaves_the_answer_sent_and_is_forwarded_as_one(
    tmp_path: pytest.TempPathFactory, kind: str
) -> None:
    async with answer_mailed(tmp_path) as (gw, relay, answer_id):
        before = mo_row(gw)
        if kind == "dsn":
            warning = report(answer_id, "<w1@relay.example>", (STAFF, "delayed", "4.4.1"))
        elif kind == "plain":
            warning = plain(answer_id, *EXIM_DELAY)
        else:
            warning = quoting(answer_id, *(GMAIL_DELAY if kind == "gmail" else POSTFIX_DELAY))
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


@pytest.mark.parametrize("kind", ["exim", "gmail"])
async def test_a_plain_text_bounce_of_the_answer_still_fails_it(
    tmp_path: pytest.TempPathFactory, kind: str
) -> None:
    async with answer_mailed(tmp_path) as (gw, relay, answer_id):
        bounce = plain(answer_id, *EXIM_FAILED) if kind == "exim" else quoting(answer_id, *GMAIL_FAILED)
        said = await delivered(gw.port, bounce, rcpt=gw.config.mail.from_address)
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
