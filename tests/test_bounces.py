"""Bounces that reach the relay port (R-1.7): recorded, never an SMS, and handed to the fallback address.

A real SMTP client sends to the running gateway, an SMTP sink plays the relay: the forward carries
the original as an attachment and an empty envelope sender (it can never start a loop), it is
queued in the acceptance's own write, and a bounce delivered twice (R-1.8) is forwarded once.
Auto-replies, read receipts, recalls and success reports are only recorded; so is every bounce
without a fallback. A long-lined original goes base64. Bounces to the gateway's own address and to
postmaster: test_bounces_addressed.py.
"""

from __future__ import annotations

import asyncio
import smtplib
from email import message_from_bytes, policy
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any

from gateway.smtp import replies
from tests.conftest import DOMAIN, STAFF, Sink, free_port, make_config, running_gateway, smtp_sink
from tests.test_intake_workers import log_events, stop, worker_config
from tests.test_process import start_daemon

RCPT = f"601123456@{DOMAIN}"
FALLBACK = "ops@acme.example"
WITH_FALLBACK = f'\n[replies]\nfallback_address = "{FALLBACK}"\n'
FORWARD_TEXT = "A bounce reached the SMS gateway; it was not sent as SMS. The original is attached."


def bounce(message_id: str = "<bounce-1@mx.acme.example>", subject: str = "Undelivered Mail") -> bytes:
    """A plain-text bounce as a client's MTA writes it (no DSN), with 8-bit text in it."""
    return (
        f"From: MAILER-DAEMON@mx.acme.example\r\nTo: {RCPT}\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nAuto-Submitted: auto-replied\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "The mail to jan@partner.example could not be delivered: mailbox full.\r\n"
        "Zażółć gęślą jaźń.\r\n"
    ).encode()


def report_part(content_type: str, *blocks: dict[str, str]) -> Message:
    """A report's machine-readable part: blocks of fields, as `gateway.bounce.dsn` writes them."""
    part = Message()
    part.set_type(content_type)
    fields = []
    for block in blocks:
        one = Message()
        for name, value in block.items():
            one[name] = value
        fields.append(one)
    part.set_payload(fields)
    return part


def dsn(message_id: str = "<dsn-1@mx.acme.example>", *actions: str) -> bytes:
    """An RFC 3464 delivery status notification, one recipient per action (default: one failed)."""
    report = MIMEMultipart("report", boundary="dsn-boundary", report_type="delivery-status")
    report["From"] = STAFF
    report["To"] = RCPT
    report["Subject"] = "Delivery Status Notification (Failure)"
    report["Message-ID"] = message_id
    report.attach(MIMEText("Your message to jan@partner.example could not be delivered.\n"))
    blocks = [{"Final-Recipient": f"rfc822; jan{i}@partner.example", "Action": action,
               "Status": "5.1.1" if action == "failed" else "2.0.0"}
              for i, action in enumerate(actions or ("failed",))]  # fmt: skip
    report.attach(report_part("message/delivery-status", {"Reporting-MTA": "dns; mx.acme.example"}, *blocks))
    return report.as_bytes().replace(b"\n", b"\r\n")


def out_of_office() -> bytes:
    return (
        f"From: {STAFF}\r\nTo: {RCPT}\r\nSubject: Automatic reply: meeting\r\n"
        "Message-ID: <oof-1@acme.example>\r\nAuto-Submitted: auto-replied\r\n"
        "X-Auto-Response-Suppress: All\r\n\r\nI am out of the office until Monday.\r\n"
    ).encode()


def read_receipt() -> bytes:
    report = MIMEMultipart("report", boundary="mdn-boundary", report_type="disposition-notification")
    report["From"] = STAFF
    report["To"] = RCPT
    report["Subject"] = "Read: meeting"
    report["Message-ID"] = "<mdn-1@acme.example>"
    report.attach(MIMEText("Your message was displayed.\n"))
    fields = {
        "Final-Recipient": "rfc822; anna@acme.example",
        "Disposition": "manual-action/MDN-sent; displayed",
    }
    report.attach(report_part("message/disposition-notification", fields))
    return report.as_bytes().replace(b"\n", b"\r\n")


def deliver(port: int, raw: bytes, sender: str = "", rcpt: str = RCPT) -> str:
    """One SMTP session from the trusted network; the reply to DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("mx.acme.example")
        assert c.mail(sender)[0] == 250
        assert c.rcpt(rcpt)[0] == 250
        code, text = c.data(raw)
        return f"{code} {text.decode()}"


async def delivered(port: int, raw: bytes, sender: str = "", rcpt: str = RCPT) -> str:
    return await asyncio.wait_for(asyncio.to_thread(deliver, port, raw, sender, rcpt), 60)


def rcpt_reply(port: int, sender: str, rcpt: str) -> int:
    """The code RCPT gets after MAIL from `sender` on the trusted network."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("mx.acme.example")
        assert c.mail(sender)[0] == 250
        return c.rcpt(rcpt)[0]


def parsed(content: bytes) -> Any:
    return message_from_bytes(content, policy=policy.default)


def assert_forward_of(sink_mail: tuple[str, list[str], bytes], original: bytes, subject: str) -> None:
    """The sink's mail is the gateway's forward of `original`: null sender, original attached whole."""
    mail_from, rcpts, content = sink_mail
    assert mail_from == "<>" and rcpts == [FALLBACK]
    msg = parsed(content)
    assert msg["Subject"].strip() == f"Bounce received by the SMS gateway: {subject}"
    assert msg["Auto-Submitted"] == "auto-replied" and msg["To"] == FALLBACK
    assert FORWARD_TEXT in " ".join(msg.get_body(("plain",)).get_content().split())
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content_type() == "message/rfc822"
    assert original.replace(b"\r\n", b"\n") in content.replace(b"\r\n", b"\n")  # byte for byte


def outbox(gw: Any) -> list[tuple[str, str, str]]:
    return gw.store.db.conn.execute("SELECT kind, mail_from, rcpt FROM outbox ORDER BY id").fetchall()


async def test_a_bounce_with_a_null_sender_reaches_the_fallback_address(tmp_path: Path) -> None:
    relay = free_port()
    async with smtp_sink(relay) as sink:
        config = make_config(tmp_path, smsc_port=1, relay_port=relay, extra=WITH_FALLBACK)
        async with running_gateway(config) as gw:
            answer = await delivered(gw.port, bounce())
            queued = outbox(gw)  # in the write the 250 waited for
            await sink.wait(1)
            emails = gw.store.db.conn.execute("SELECT mail_from, automatic FROM emails").fetchall()
            messages = gw.store.db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert answer.startswith("250 2.0.0 OK: recorded, not sent as SMS (")
    assert queued == [("bounce-forward", "", FALLBACK)]
    assert len(emails) == 1 and emails[0][0] == "" and "empty envelope sender" in emails[0][1]
    assert messages == 0
    assert len(sink.messages) == 1
    assert_forward_of(sink.messages[0], bounce(), "Undelivered Mail")


async def test_a_delivery_report_from_a_user_address_reaches_the_fallback_address(tmp_path: Path) -> None:
    relay = free_port()
    async with smtp_sink(relay) as sink:
        config = make_config(tmp_path, smsc_port=1, relay_port=relay, extra=WITH_FALLBACK)
        async with running_gateway(config) as gw:
            answer = await delivered(gw.port, dsn(), sender=STAFF)
            await sink.wait(1)
            messages = gw.store.db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert answer == replies.OK_NOT_SENT.format("delivery status notification")
    assert messages == 0
    assert_forward_of(sink.messages[0], dsn(), "Delivery Status Notification (Failure)")


async def test_auto_replies_and_receipts_are_recorded_not_forwarded(tmp_path: Path) -> None:
    # RFC 3834 responders send with the empty envelope sender too: what the mail is decides.
    relay = free_port()
    async with smtp_sink(relay) as sink:
        config = make_config(tmp_path, smsc_port=1, relay_port=relay, extra=WITH_FALLBACK)
        async with running_gateway(config) as gw:
            answers = [
                await delivered(gw.port, out_of_office()),
                await delivered(gw.port, out_of_office(), sender=STAFF),
                await delivered(gw.port, read_receipt()),
            ]
            await delivered(gw.port, bounce())  # and then a bounce: only it is forwarded
            await sink.wait(1)
            await asyncio.sleep(0.5)  # anything queued before the bounce has been sent by now
            reasons = [r[0] for r in gw.store.db.conn.execute("SELECT automatic FROM emails ORDER BY id")]
            queued = outbox(gw)
    assert all(a.startswith("250 2.0.0 OK: recorded, not sent as SMS (") for a in answers)
    assert [r.split(";")[0] for r in reasons[:3]] == [
        "out-of-office reply",
        "out-of-office reply",
        "read receipt",
    ]
    assert queued == [("bounce-forward", "", FALLBACK)]
    assert len(sink.messages) == 1
    assert_forward_of(sink.messages[0], bounce(), "Undelivered Mail")


async def test_the_fallback_address_decides_whether_a_bounce_is_forwarded(tmp_path: Path) -> None:
    relay = free_port()
    async with smtp_sink(relay) as sink:
        # Without a fallback address (the admin address is no substitute) a bounce is only recorded.
        plain = make_config(tmp_path / "plain", smsc_port=1, relay_port=relay)
        async with running_gateway(plain) as gw:
            answer = await delivered(gw.port, bounce())
            recorded = gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0]
            queued_without = outbox(gw)
        with_fallback = make_config(tmp_path / "fallback", smsc_port=1, relay_port=relay, extra=WITH_FALLBACK)
        async with running_gateway(with_fallback) as gw:
            await delivered(gw.port, bounce())
            await sink.wait(1)
            queued_with = outbox(gw)
    assert answer.startswith("250 2.0.0 OK: recorded, not sent as SMS (")
    assert recorded == 1 and queued_without == []
    assert queued_with == [("bounce-forward", "", FALLBACK)]
    assert [m[1] for m in sink.messages] == [[FALLBACK]]


# The bounces' subjects in the order the tests send them.
ORDER = ("Undelivered Mail", "Another one", "Delivery Status Notification (Failure)")


def subject_of(sink_mail: tuple[str, list[str], bytes]) -> str:
    return str(parsed(sink_mail[2])["Subject"]).strip()


async def forwarded_subjects(sink: Sink, n: int) -> list[str]:
    """The forwards' subjects, in the order the bounces came: the outbox sends up to four mails at
    once, so the sink may get them in another."""
    await sink.wait(n)
    sink.messages.sort(key=lambda m: ORDER.index(subject_of(m).rpartition("gateway: ")[2]))
    return [subject_of(m) for m in sink.messages]


async def test_the_same_bounce_delivered_twice_is_forwarded_once(tmp_path: Path) -> None:
    # an MTA that lost the 250 delivers the bounce again, with the same Message-ID.
    relay = free_port()
    async with smtp_sink(relay) as sink:
        config = make_config(tmp_path, smsc_port=1, relay_port=relay, extra=WITH_FALLBACK)
        async with running_gateway(config) as gw:
            first = await delivered(gw.port, bounce())
            again = await delivered(gw.port, bounce())
            await delivered(gw.port, bounce("<bounce-2@mx.acme.example>", "Another one"))
            subjects = await forwarded_subjects(sink, 2)
            await asyncio.sleep(0.5)
            recorded = gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0]
            queued = outbox(gw)
    assert first == again and first.startswith("250 ")
    assert recorded == 3  # every delivery is recorded
    assert len(queued) == 2 and len(sink.messages) == 2
    assert subjects == [
        "Bounce received by the SMS gateway: Undelivered Mail",
        "Bounce received by the SMS gateway: Another one",
    ]


async def test_a_forward_that_comes_back_to_the_relay_is_never_forwarded_again(tmp_path: Path) -> None:
    # An alias of the fallback address that includes a phone (or a relay pointed at the gateway)
    # hands the forward back from <>: each round attached the last, for ever. A bounce of the
    # forward (which carries it inside) is not forwarded either.
    relay = free_port()
    async with smtp_sink(relay) as sink:
        config = make_config(tmp_path, smsc_port=1, relay_port=relay, extra=WITH_FALLBACK)
        async with running_gateway(config) as gw:
            assert (await delivered(gw.port, bounce())).startswith("250 ")
            await forwarded_subjects(sink, 1)
            forward = sink.messages[0][2]
            assert (await delivered(gw.port, forward)).startswith("250 ")
            wrapped = bounce("<bounce-9@mx.acme.example>").replace(b"\r\n\r\n", b"\r\n\r\n" + forward, 1)
            assert (await delivered(gw.port, wrapped)).startswith("250 ")
            await asyncio.sleep(1.0)
            recorded = gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0]
            queued = outbox(gw)
    assert recorded == 3 and len(queued) == 1 and len(sink.messages) == 1


async def test_a_large_bounce_is_forwarded_with_its_headers_only(tmp_path: Path) -> None:
    relay = free_port()
    big = bounce().replace(b"\r\n\r\n", b"\r\n\r\n" + (b"x" * 500 + b"\r\n") * 700, 1)  # 350 KB
    async with smtp_sink(relay) as sink:
        config = make_config(tmp_path, smsc_port=1, relay_port=relay, extra=WITH_FALLBACK)
        async with running_gateway(config) as gw:
            await delivered(gw.port, big)
            await sink.wait(1)
    mail_from, _rcpts, content = sink.messages[0]
    msg = parsed(content)
    text = " ".join(msg.get_body(("plain",)).get_content().split())
    assert mail_from == "<>" and "only its headers are attached" in text
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content_type() == "text/rfc822-headers"
    assert b"Message-ID: <bounce-1@mx.acme.example>" in content and b"x" * 500 not in content
    assert len(content) < 10_000


async def test_a_bounce_through_an_intake_worker_reaches_the_fallback_address(tmp_path: Path) -> None:
    # The shipped config serves the relay port from a worker process, whose writes (and the
    # forward queued with them) go over the channel to the daemon.
    smtp_port, relay = free_port(), free_port()
    async with smtp_sink(relay) as sink:
        config = worker_config(tmp_path, free_port(), smtp_port, 1, relay_port=relay, extra=WITH_FALLBACK)
        proc = await start_daemon(config, smtp_port)
        try:
            first = await delivered(smtp_port, bounce())
            await delivered(smtp_port, bounce())
            await delivered(smtp_port, dsn(), sender=STAFF)
            subjects = await forwarded_subjects(sink, 2)
            await asyncio.sleep(0.5)
        finally:
            await stop(proc)
    assert first.startswith("250 2.0.0 OK: recorded, not sent as SMS (")
    automatic = log_events(tmp_path, "smtp.automatic")
    assert len(automatic) == 3 and all(str(r["worker"]).startswith("intake-") for r in automatic)
    assert len(sink.messages) == 2
    assert subjects == [
        "Bounce received by the SMS gateway: Undelivered Mail",
        "Bounce received by the SMS gateway: Delivery Status Notification (Failure)",
    ]
    assert_forward_of(sink.messages[0], bounce(), "Undelivered Mail")
    assert_forward_of(sink.messages[1], dsn(), "Delivery Status Notification (Failure)")


async def test_a_bounce_with_a_line_over_998_bytes_is_forwarded_as_a_base64_file(tmp_path: Path) -> None:
    # RFC 5322 2.1.1: the relay refused the forward for good (the sink answers 500 Line too long).
    relay = free_port()
    long = bounce().replace(b"mailbox full.", b"mailbox full. " + b"y" * 2000, 1)
    async with smtp_sink(relay) as sink:
        config = make_config(tmp_path, smsc_port=1, relay_port=relay, extra=WITH_FALLBACK)
        async with running_gateway(config) as gw:
            assert (await delivered(gw.port, long)).startswith("250 ")
            await sink.wait(1)
    mail_from, _rcpts, content = sink.messages[0]
    assert mail_from == "<>" and max(len(line) for line in content.split(b"\n")) <= 998
    msg = parsed(content)
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content_type() == "application/octet-stream"
    assert attachment["Content-Transfer-Encoding"] == "base64" and attachment.get_filename() == "bounce.eml"
    assert attachment.get_content() == long  # the original, CRLF and all
    assert "attached as a file" in " ".join(msg.get_body(("plain",)).get_content().split())


async def test_success_dsns_and_null_sender_auto_replies_are_not_forwarded(tmp_path: Path) -> None:
    # Only a DSN with a failed or delayed recipient tells anybody of mail astray; a vacation
    # responder's answer from <> (RFC 3834) is no bounce either, whatever its subject.
    relay = free_port()
    vacation = (
        f"From: anna@partner.example\r\nTo: {RCPT}\r\nSubject: Re: meeting\r\n"
        "Message-ID: <vacation-1@partner.example>\r\nAuto-Submitted: auto-replied\r\n\r\n"
        "I am on holiday until 3 May.\r\n"
    ).encode()
    quiet = [dsn(f"<ok-{a}@mx.acme.example>", a, "delivered") for a in ("delivered", "relayed", "expanded")]
    loud = [dsn("<late@mx.acme.example>", "delivered", "delayed"), dsn("<lost@mx.acme.example>")]
    async with smtp_sink(relay) as sink:
        config = make_config(tmp_path, smsc_port=1, relay_port=relay, extra=WITH_FALLBACK)
        async with running_gateway(config) as gw:
            answers = [await delivered(gw.port, raw) for raw in [*quiet, vacation, *loud]]
            await sink.wait(2)
            await asyncio.sleep(0.5)  # anything queued before the last two has been sent by now
            recorded = gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0]
            queued = outbox(gw)
    assert all(a.startswith("250 2.0.0 OK: recorded, not sent as SMS (") for a in answers)
    assert recorded == 6 and len(queued) == 2 and len(sink.messages) == 2
    sink.messages.sort(key=lambda m: b"<late@mx.acme.example>" not in m[2])  # sent at once, in any order
    assert_forward_of(sink.messages[0], loud[0], "Delivery Status Notification (Failure)")
    assert_forward_of(sink.messages[1], loud[1], "Delivery Status Notification (Failure)")
