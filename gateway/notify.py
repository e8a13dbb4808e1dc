"""Builds the emails the gateway sends to people; no I/O.

A failed SMS is reported as a real delivery status notification (RFC 3464, `multipart/report;
report-type=delivery-status`) so that Outlook and other clients show it as a bounce and thread it
with the original mail; other notices are plain text. Everything returns bytes ready for the
outbox, with a fresh Message-ID and Date.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid
from typing import Any

_STATE_TEXT = {
    "failed": "could not be delivered",
    "expired": "expired before it could be delivered",
    "cancelled": "was cancelled",
}


def _stamp(msg: Message, *, sender: str, rcpt: str, subject: str, domain: str) -> None:
    msg["From"] = f"SMS gateway <{sender}>"
    msg["To"] = rcpt
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-replied"  # RFC 3834: never answer this automatically


def dsn(info: dict[str, Any], *, sender: str, rcpt: str, reporting_mta: str, domain: str) -> bytes:
    """A bounce for one SMS message (all its parts), naming the number and the reason (R-6.3)."""
    number = info["recipient"]
    what = _STATE_TEXT.get(info["state"], "could not be delivered")
    reason = info.get("reason") or "no reason given by the SMSC"
    human = (
        f"Your SMS to {number} {what}.\n\n"
        f"Reason: {reason}\n\n"
        f"Text of the SMS ({info['parts_total']} part(s)):\n\n{info['text']}\n"
    )
    report = MIMEMultipart("report", report_type="delivery-status")
    _stamp(report, sender=sender, rcpt=rcpt, subject=f"Undelivered SMS to {number}", domain=domain)
    if info.get("header_message_id"):
        ref = f"<{info['header_message_id']}>"
        report["In-Reply-To"] = ref
        report["References"] = ref
    report.attach(MIMEText(human, "plain", "utf-8"))
    status = "5.4.7" if info["state"] == "expired" else "5.0.0"
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    per_message["Arrival-Date"] = format_datetime(datetime.fromtimestamp(info["created_at"], UTC))
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {number}@{domain}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = status
    per_recipient["Diagnostic-Code"] = f"smsc; {reason}"[:900]
    delivery = Message()
    delivery.set_type("message/delivery-status")
    delivery.set_payload([per_message, per_recipient])
    report.attach(delivery)
    headers = Message()
    headers.set_type("text/rfc822-headers")
    headers.set_payload(
        f"From: {info['mail_from']}\r\nTo: {number}@{domain}\r\n"
        + (f"Message-ID: <{info['header_message_id']}>\r\n" if info.get("header_message_id") else "")
    )
    report.attach(headers)
    return report.as_bytes()


def delivered_notice(info: dict[str, Any], *, sender: str, rcpt: str, domain: str) -> bytes:
    msg = EmailMessage()
    _stamp(msg, sender=sender, rcpt=rcpt, subject=f"SMS delivered to {info['recipient']}", domain=domain)
    if info.get("header_message_id"):
        msg["In-Reply-To"] = f"<{info['header_message_id']}>"
    msg.set_content(f"Your SMS to {info['recipient']} was delivered ({info['parts_total']} part(s)).\n")
    return msg.as_bytes()


def truncation_notice(
    *, sender: str, rcpt: str, domain: str, recipients: list[str], parts: int, dropped: str, subject: str
) -> bytes:
    """R-1.5: the text was longer than the allowed number of parts; say where it was cut."""
    msg = EmailMessage()
    _stamp(msg, sender=sender, rcpt=rcpt, subject=f"SMS text was shortened: {subject}"[:120], domain=domain)
    preview = dropped if len(dropped) <= 400 else dropped[:400] + "…"
    msg.set_content(
        f"Your email to {', '.join(recipients)} was longer than {parts} SMS parts.\n"
        f"The first {parts} parts were sent; this text was cut off and not sent:\n\n{preview}\n"
    )
    return msg.as_bytes()


def held_notice(
    *, sender: str, rcpt: str, domain: str, recipients: list[str], until: datetime, subject: str
) -> bytes:
    """R-2.4: bulk mail in the account's quiet hours is held, not dropped; the sender learns until when."""
    msg = EmailMessage()
    _stamp(
        msg, sender=sender, rcpt=rcpt, subject=f"SMS held until {until:%H:%M}: {subject}"[:120], domain=domain
    )
    msg.set_content(
        f"Your bulk email to {', '.join(recipients)} arrived during the quiet hours of your account.\n"
        f"The SMS will be sent at {until:%Y-%m-%d %H:%M %Z}.\n"
    )
    return msg.as_bytes()


def suspended_notice(*, sender: str, rcpt: str, domain: str, account: str, reason: str) -> bytes:
    msg = EmailMessage()
    _stamp(msg, sender=sender, rcpt=rcpt, subject=f"SMS account {account} suspended", domain=domain)
    msg.set_content(
        f"Account {account} was suspended automatically: {reason}.\n"
        f"Its users cannot send SMS until an admin runs: smsgw account resume {account}\n"
    )
    return msg.as_bytes()


def confirmation(
    *,
    sender: str,
    rcpt: str,
    domain: str,
    subject: str,
    numbers: list[str],
    parts: int,
    coding: str,
    why: str | None,
    removed: list[str],
    transliterated: bool,
    in_reply_to: str | None,
) -> bytes:
    """R-1.9: what was accepted, per recipient, and why it costs what it costs."""
    msg = EmailMessage()
    _stamp(msg, sender=sender, rcpt=rcpt, subject=f"SMS accepted: {subject}"[:120], domain=domain)
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    encoding = coding + (f" ({why})" if why else "")
    lines = [f"  {n}: {parts} SMS part(s), {encoding}" for n in numbers]
    notes = []
    if transliterated:
        notes.append("Polish letters were replaced by plain ones to stay in the cheaper GSM alphabet.")
    if removed:
        notes.append("Removed from the email before sending: " + "; ".join(removed) + ".")
    msg.set_content(
        "Your email was accepted and will be sent as SMS:\n\n"
        + "\n".join(lines)
        + ("\n\n" + "\n".join(notes) if notes else "")
        + "\n"
    )
    return msg.as_bytes()
