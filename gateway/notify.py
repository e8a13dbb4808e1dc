"""Builds the emails the gateway sends to people; no I/O.

A failed SMS is reported as a real delivery status notification (RFC 3464, `multipart/report;
report-type=delivery-status`) so that Outlook and other clients show it as a bounce and thread it
with the original mail; other notices are plain text. Everything returns bytes ready for the
outbox, with a fresh Message-ID and Date. Every header value that comes from a user or an SMSC
goes through `gateway.mailheaders`, and every body through `mailheaders.body`, so that no subject,
text or Message-ID can make a builder raise (which would refuse the mail with `451`, or make the
SMSC redeliver a receipt, forever).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid
from typing import Any

from gateway import mailheaders as h
from smsc.encoding import transliterate_text

# The bounced mail's Subject whole (longer is no subject a person wrote), folded over lines.
_ORIGINAL_SUBJECT_MAX = 500

_STATE_TEXT = {
    "failed": "could not be delivered",
    "expired": "expired before it could be delivered",
    "cancelled": "was cancelled",
}


def stamp(
    msg: Message,
    *,
    sender: str,
    rcpt: str,
    subject: str,
    domain: str,
    in_reply_to: str | None = None,
    auto: str = "auto-replied",
) -> None:
    """The headers every mail of the gateway carries. RFC 3834: `auto-replied` for what answers a
    mail (bounces, notices about it), `auto-generated` for what no mail caused; either way
    nobody's program answers it."""
    msg["From"] = f"SMS gateway <{h.address(sender)}>"
    msg["To"] = h.address(rcpt)
    msg["Subject"] = h.text(subject)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=h.text(domain, limit=200).replace(" ", "") or None)
    msg["Auto-Submitted"] = auto
    ref = h.msgid(in_reply_to)
    if ref is not None:
        msg["In-Reply-To"] = ref
        msg["References"] = ref


def plain(msg: EmailMessage, content: str) -> bytes:
    set_text(msg, content)
    return msg.as_bytes()


def set_text(msg: EmailMessage, content: str) -> None:
    """The body as UTF-8, quoted-printable once it is not ASCII (as the answers in forwarded.py are).

    The email package would choose `8bit` for short lines: a relay without 8BITMIME then has to
    convert the notice, or passes it on as it is to the next hop that cannot take it.
    """
    text = h.body(content)
    msg.set_content(text, charset="utf-8", cte=None if text.isascii() else "quoted-printable")


# A receipt's stat word and its err code, as a person reads them; the code stays beside the text.
_STAT_WORDS = {
    "UNDELIV": "not delivered",
    "EXPIRED": "not delivered in time",
    "REJECTD": "refused by the operator",
    "DELETED": "deleted by the operator",
    "UNKNOWN": "lost track of by the operator",
}
_ERR_CODES = {"001": "the phone was unreachable until the message expired"}
_RECEIPT = re.compile(r"^(?P<prefix>part \d+ of \d+: )?(?P<stat>[A-Z]{7})(?: err:(?P<err>\w+))?(?P<rest>.*)$")
# An SMPP refusal at submit (`ESME_RINVDSTADR (0x0B)`, smsc.smpp.pdu.status_text) as office staff
# read it; the name and code stay beside the words for whoever asks the operator.
_SMPP_WORDS = {
    "ESME_RINVDSTADR": "the operator refused the number as invalid",
    "ESME_RINVDSTTON": "the operator refused the number's format",
    "ESME_RINVDSTNPI": "the operator refused the number's format",
    "ESME_RINVSRCADR": "the operator refused the sender number or name",
    "ESME_RINVSRCTON": "the operator refused the sender's format",
    "ESME_RINVSRCNPI": "the operator refused the sender's format",
    "ESME_RINVMSGLEN": "the operator refused the length of the text",
    "ESME_RINVEXPIRY": "the operator refused the validity period",
    "ESME_RSUBMITFAIL": "the operator could not take the message",
    "ESME_RX_P_APPN": "the operator refused the message",
    "ESME_RX_R_APPN": "the operator refused the message",
    "ESME_RMSGQFUL": "the operator's queue was full",
    "ESME_RSYSERR": "the operator's system failed",
}
_SMPP_REFUSAL = re.compile(
    r"^(?P<prefix>part \d+ of \d+: )?(?P<name>ESME_\w+) \((?P<code>0x[0-9A-F]+)\)(?P<rest>.*)$"
)
# A CIMD2 refusal at submit (`CIMD2 900:300 incorrect destination address`) or failed report
# (`CIMD2 061:3 delivery failed 062:1 unknown subscriber`, smsc/cimd2/messages.py): its code.
_CIMD2_CODE = re.compile(r"^(?:part \d+ of \d+: )?CIMD2 (?:061:\d+ .*?)?(?P<param>900|062):(?P<code>\d+)\b")
# RFC 3463 status of a bounce, by the SMSC's code in the stored reason (as `_smsc_code` names it).
# X.1.1 "bad destination mailbox address": the operator refused the number itself, or its network
# knows no such subscriber; a bounce processor then stops mailing that address, rightly. Every
# other failure is 5.0.0, an expiry 5.4.7 (`_status`).
_STATUS_BY_CODE = {
    "ESME_RINVDSTADR": "5.1.1",  # SMPP 0x0B: invalid destination address
    "ESME_RINVDSTTON": "5.1.1",  # 0x50: its type of number
    "ESME_RINVDSTNPI": "5.1.1",  # 0x51: its numbering plan
    "CIMD2 900:300": "5.1.1",  # incorrect destination address (protocols.md 1.7)
    "CIMD2 062:1": "5.1.1",  # unknown subscriber, in a status report (protocols.md 1.9)
}


def human_reason(reason: str) -> str:
    """`UNDELIV err:001` → "not delivered: the phone was unreachable ... (operator code 001)";
    `ESME_RINVDSTADR (0x0B)` → "the operator refused the number as invalid (ESME_RINVDSTADR, 0x0B)"."""
    out = []
    for piece in reason.split("; "):
        refusal = _SMPP_REFUSAL.match(piece)
        if refusal is not None and refusal["name"] in _SMPP_WORDS:
            words, name = _SMPP_WORDS[refusal["name"]], refusal["name"]
            out.append(f"{refusal['prefix'] or ''}{words} ({name}, {refusal['code']}){refusal['rest']}")
            continue
        m = _RECEIPT.match(piece)
        if m is None or m["stat"] not in _STAT_WORDS:
            out.append(piece)
            continue
        text = _STAT_WORDS[m["stat"]]
        if m["err"]:
            known = _ERR_CODES.get(m["err"]) if m["stat"] in ("UNDELIV", "EXPIRED") else None
            text += f": {known} (operator code {m['err']})" if known else f" (operator code {m['err']})"
        out.append(f"{m['prefix'] or ''}{text}{m['rest']}")
    return "; ".join(out)


def dsn(info: dict[str, Any], *, sender: str, rcpt: str, reporting_mta: str, domain: str) -> bytes:
    """A bounce for one SMS message (all its parts), naming the number and the reason (R-6.3)."""
    number = h.text(info["recipient"], limit=64)
    what = _STATE_TEXT.get(info["state"], "could not be delivered")
    reason = h.text(info.get("reason") or "no reason given by the SMSC", limit=900)
    human = (
        f"Your SMS to {number} {what}.\n\n"
        f"Reason: {human_reason(reason)}\n\n"
        f"Text of the SMS ({info['parts_total']} part(s)):\n\n{h.body(info['text'])}\n"
    )
    # compat32, not `h.POLICY`: the generator folds the delivery-status fields by the report's policy,
    # and `policy.default` turns a long Diagnostic-Code into encoded words, which RFC 3464 2.3.6 rules
    # out. compat32 encodes a non-ASCII Subject whole (`email.header.Header`), losing no space.
    report = MIMEMultipart("report", report_type="delivery-status")
    stamp(
        report,
        sender=sender,
        rcpt=rcpt,
        subject=f"Undelivered SMS to {number}",
        domain=domain,
        in_reply_to=info.get("header_message_id"),
    )
    report.attach(MIMEText(human, "plain", "utf-8"))
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {h.text(reporting_mta, limit=200)}"
    per_message["Arrival-Date"] = format_datetime(datetime.fromtimestamp(info["created_at"], UTC))
    per_recipient = Message()
    final = _final_recipient(info, number, domain)
    per_recipient["Final-Recipient"] = f"rfc822; {final}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = _status(info["state"], info.get("reason") or "")
    # RFC 3464 2.3.6: the diagnostic type is a registered one (smtp) or an X- token, and the field
    # stays plain: a non-ASCII character would make the email package encode the whole field as
    # an encoded-word, diagnostic type included.
    per_recipient["Diagnostic-Code"] = f"X-SMSC; {h.ascii_text(reason, limit=900)}"
    delivery = Message()
    delivery.set_type("message/delivery-status")
    delivery.set_payload([per_message, per_recipient])
    report.attach(delivery)
    headers = Message()
    headers.set_type("text/rfc822-headers")
    headers.set_payload(_original_headers(info, final))
    report.attach(headers)
    return report.as_bytes()


def _final_recipient(info: dict[str, Any], number: str, domain: str) -> str:
    """RFC 3464 2.3.2: the recipient as this MTA accepted it, the RCPT address as the client gave it
    (`601120000@…`), which is what a bounce processor matches its own mail by. Rows stored before it
    was kept, an SMS no RCPT asked for, and an address no header may carry as it is (SMTPUTF8, a
    quoted local part) name the number at the first gateway domain instead, as bounces always did."""
    given = h.address(info.get("rcpt"))
    return given if "@" in given else h.address(f"{number}@{domain}")


def _status(state: str, reason: str) -> str:
    """The RFC 3463 status: 5.4.7 for an expiry, else the first SMSC code `_STATUS_BY_CODE` knows
    among the parts' reasons, else 5.0.0 (the cause is the SMSC's, which it names in its own terms)."""
    if state == "expired":
        return "5.4.7"
    for piece in reason.split("; "):
        status = _STATUS_BY_CODE.get(_smsc_code(piece) or "")
        if status is not None:
            return status
    return "5.0.0"


def _smsc_code(piece: str) -> str | None:
    """The code in one part's reason as `_STATUS_BY_CODE` names it: `ESME_RINVDSTADR`, `CIMD2 900:300`."""
    if (refusal := _SMPP_REFUSAL.match(piece)) is not None:
        return refusal["name"]
    if (cimd2 := _CIMD2_CODE.match(piece)) is not None:
        return f"CIMD2 {cimd2['param']}:{cimd2['code']}"
    return None


def _original_headers(info: dict[str, Any], final: str) -> str:
    """The text/rfc822-headers part: what is kept of the mail that bounced (RFC 3462).

    Only its envelope sender, Subject and Message-ID are stored, so only those are given, and the
    address it was sent to as the client gave it at RCPT (`final`); the Subject is what a person
    recognises their mail by. No Original-Recipient: that is the ORCPT of an SMTP DSN request
    (RFC 3461), which the gateway does not offer. A non-ASCII Subject is written as an encoded word,
    as in the mail itself: the part stays 7-bit.
    """
    original = EmailMessage(policy=h.POLICY)
    # The mail's own From header is not stored (table emails keeps the envelope sender alone): the
    # envelope sender stands in for it, the address the bounce goes back to anyway.
    original["From"] = h.address(info["mail_from"])
    original["To"] = final
    subject = h.text(info.get("subject") or "", limit=_ORIGINAL_SUBJECT_MAX)
    if subject:
        original["Subject"] = subject
    msgid = h.msgid(info.get("header_message_id"))
    if msgid:
        original["Message-ID"] = msgid
    return "".join(original.policy.fold(name, value) for name, value in original.items())


def delivered_notice(info: dict[str, Any], *, sender: str, rcpt: str, domain: str) -> bytes:
    """A delivery, or an `unreported` end: the SMSC took the SMS and its report never came. That one
    is no bounce (it most likely reached the phone) but says plainly that nobody confirmed it."""
    number = h.text(info["recipient"], limit=64)
    parts = f"{info['parts_total']} part(s)"
    if info.get("state") == "unreported":
        subject = f"SMS sent to {number}; the SMSC sent no delivery report"
        text = (
            f"Your SMS to {number} ({parts}): {info.get('reason') or 'no delivery report'}.\n\n"
            "The SMSC took it, but no delivery report came within its validity and a day, so its"
            " delivery is unconfirmed. It most likely reached the phone, and it is not sent again.\n"
        )
    else:
        subject, text = f"SMS delivered to {number}", f"Your SMS to {number} was delivered ({parts}).\n"
    msg = EmailMessage(policy=h.POLICY)
    stamp(
        msg,
        sender=sender,
        rcpt=rcpt,
        subject=subject,
        domain=domain,
        in_reply_to=info.get("header_message_id"),
    )
    return plain(msg, text)


def truncation_notice(
    *,
    sender: str,
    rcpt: str,
    domain: str,
    recipients: list[str],
    parts: int,
    dropped: str,
    subject: str,
    in_reply_to: str | None = None,
) -> bytes:
    """R-1.5: the text was longer than the allowed number of parts; say where it was cut.

    Like every notice about one mail, it answers that mail (`in_reply_to`, its Message-ID), so that
    the mail client files it with it rather than as a conversation of its own."""
    msg = EmailMessage(policy=h.POLICY)
    subject = f"SMS text was shortened: {subject}"
    stamp(msg, sender=sender, rcpt=rcpt, subject=subject, domain=domain, in_reply_to=in_reply_to)
    preview = dropped if len(dropped) <= 400 else dropped[:400] + "…"
    return plain(
        msg,
        f"Your email to {', '.join(recipients)} was longer than {parts} SMS parts.\n"
        f"The first {parts} parts were sent; this text was cut off and not sent:\n\n{preview}\n",
    )


def held_notice(
    *,
    sender: str,
    rcpt: str,
    domain: str,
    recipients: list[str],
    until: datetime,
    subject: str,
    in_reply_to: str | None = None,
) -> bytes:
    """R-2.4: bulk mail in the account's quiet hours is held, not dropped; the sender learns until when."""
    msg = EmailMessage(policy=h.POLICY)
    subject = f"SMS held until {until:%H:%M}: {subject}"
    stamp(msg, sender=sender, rcpt=rcpt, subject=subject, domain=domain, in_reply_to=in_reply_to)
    return plain(
        msg,
        f"Your bulk email to {', '.join(recipients)} arrived during the quiet hours of your account.\n"
        f"The SMS will be sent at {until:%Y-%m-%d %H:%M %Z}.\n",
    )


def suspended_notice(*, sender: str, rcpt: str, domain: str, account: str, reason: str) -> bytes:
    msg = EmailMessage(policy=h.POLICY)
    subject = f"SMS account {account} suspended"
    stamp(msg, sender=sender, rcpt=rcpt, subject=subject, domain=domain, auto="auto-generated")
    return plain(
        msg,
        f"Account {account} was suspended automatically: {reason}.\n"
        f"Its users cannot send SMS until an admin runs: smsgw account resume {account}\n",
    )


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
    msg = EmailMessage(policy=h.POLICY)
    stamp(
        msg,
        sender=sender,
        rcpt=rcpt,
        subject=f"SMS accepted: {subject}",
        domain=domain,
        in_reply_to=in_reply_to,
    )
    encoding = coding + (f" ({why})" if why else "")
    lines = [f"  {n}: {parts} SMS part(s), {encoding}" for n in numbers]
    notes = []
    if transliterated:
        notes.append("Polish letters were replaced by plain ones to stay in the cheaper GSM alphabet.")
    if removed:
        notes.append("Removed from the email before sending: " + "; ".join(removed) + ".")
    return plain(
        msg,
        "Your email was accepted and will be sent as SMS:\n\n"
        + "\n".join(lines)
        + ("\n\n" + "\n".join(notes) if notes else "")
        + "\n",
    )


def notice(
    *, sender: str, rcpt: str, domain: str, subject: str, content: str, in_reply_to: str | None = None
) -> bytes:
    """A plain notice: limit reached (R-2.4), the info@ answer (R-2.3), and others without a form;
    `in_reply_to` is the Message-ID of the mail it is about, if any."""
    msg = EmailMessage(policy=h.POLICY)
    stamp(msg, sender=sender, rcpt=rcpt, subject=subject, domain=domain, in_reply_to=in_reply_to)
    return plain(msg, content)


def premium_verification(
    *,
    sender: str,
    rcpt: str,
    domain: str,
    confirm_address: str,
    password: str,
    account: str,
    numbers: list[str],
    expires_at: datetime,
) -> bytes:
    """R-4.3: ask the service's address to confirm before any premium SMS is mailed to it."""
    msg = EmailMessage(policy=h.POLICY)
    subject = f"Confirm premium SMS service {password}"
    stamp(msg, sender=sender, rcpt=rcpt, subject=subject, domain=domain, auto="auto-generated")
    msg["Reply-To"] = h.address(confirm_address)
    return plain(
        msg,
        f"Premium SMS sent with the password {h.text(password, 10)} to {', '.join(numbers)}"
        f" (account {h.text(account, 80)}) are to be mailed to this address.\n\n"
        "To confirm that this address wants them, reply to this mail, or send any mail to\n\n"
        f"    {h.address(confirm_address)}\n\n"
        f"before {expires_at:%Y-%m-%d %H:%M %Z}. Until then the SMS are kept, not mailed.\n"
        "If you did not expect this mail, ignore it: nothing will be sent to you.\n",
    )


def premium_answer_cut(
    *, sender: str, rcpt: str, domain: str, phone: str, sent: str, dropped: str, in_reply_to: str | None
) -> bytes:
    """R-4.5: the free answer holds one SMS; tell the answering address what the phone got."""
    msg = EmailMessage(policy=h.POLICY)
    stamp(msg, sender=sender, rcpt=rcpt, subject=f"Your answer to {phone} was shortened", domain=domain,
           in_reply_to=in_reply_to)  # fmt: skip
    preview = dropped if len(dropped) <= 400 else dropped[:400] + "…"
    return plain(
        msg,
        f"An answer to a premium SMS is one SMS. {phone} received only this:\n\n{sent}\n\n"
        f"This was cut off and not sent:\n\n{preview}\n",
    )


def billing_file(
    *, sender: str, rcpt: str, domain: str, subject: str, summary: str, filename: str, content: bytes
) -> bytes:
    """R-5.1: a monthly billing file as a `text/plain; charset=utf-8` attachment, a summary above it.

    The attachment is base64: its tabs and long lines reach the receiver byte for byte, so the
    checksum on its last line still matches.
    """
    msg = EmailMessage(policy=h.POLICY)
    stamp(msg, sender=sender, rcpt=rcpt, subject=subject, domain=domain, auto="auto-generated")
    set_text(msg, summary)
    msg.add_attachment(
        h.body(content.decode("utf-8", "replace")),
        subtype="plain",
        charset="utf-8",
        cte="base64",
        disposition="attachment",
        filename=attachment_name(filename),
    )
    return msg.as_bytes()


# Characters no Windows file name may hold; `?` also keeps an encoded word from forming.
_NOT_IN_FILE_NAMES = frozenset('"\\/?*:<>|')
ATTACHMENT_STEM_MAX = 80


def attachment_name(filename: str) -> str:
    """A billing attachment's name: the account's own name in plain ASCII ("Spółdzielnia „Łódź”"
    → "Spoldzielnia Lodz"), its extension kept whatever the length.

    Plain ASCII because mail clients disagree on encoded file names (Outlook and RFC 2231), and the
    extension because without it Windows cannot tell what the file is (a name cut to 100
    characters lost its ".txt" and ended inside a `%XX` escape)."""
    stem, dot, ext = filename.rpartition(".")
    if not dot or not ext.isalnum():
        stem, ext = filename, "txt"
    plain = unicodedata.normalize("NFKD", transliterate_text(stem))
    plain = "".join(c for c in plain if c.isascii() and c.isprintable() and c not in _NOT_IN_FILE_NAMES)
    plain = " ".join(plain.split())[:ATTACHMENT_STEM_MAX].strip(" .-") or "billing"
    return f"{plain}.{ext}"
