"""The bounce of a failed SMS: a real delivery status notification (RFC 3464, `multipart/report;
report-type=delivery-status`) that Outlook and other clients show as a bounce and thread with the
mail, its reason in words a person reads beside the operator's code (`gateway.reasons`), and fields
a bounce processor reads: the recipient as the client gave it, an RFC 3463 status, the SMSC's own
words, and what a mail program's SMTP DSN request (RFC 3461) asked to get back: its ORCPT as
Original-Recipient, its ENVID as Original-Envelope-Id, and with RET=HDRS the mail's headers alone.
The delivery receipt such a program asks for (NOTIFY=SUCCESS) is built the same way (`success_dsn`),
so that it reads it as the receipt of its mail. No I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.charset import QP, Charset
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import Any

from gateway import bouncewords as bw
from gateway import mailheaders as h
from gateway import mimewrite
from gateway import wording as w
from gateway.notify import stamp
from gateway.reasons import (
    NO_ROUTE_SAID,
    NUMBER_REFUSED,
    OPTED_OUT_SAID,
    REFUSED_EXPIRED_SAID,
    from_smsc,
    human_reason,
    refused_for_good,
    smsc_code,
)
from gateway.smtp.dsnparams import ENVID_MAX, ORCPT_MAX, utf8_addr_xtext
from gateway.store.partnotes import LINK_GONE, NO_LINK_EXPIRED, STUCK_EXPIRED, TIED_EXPIRED
from gateway.wording import Language

# The bounced mail's Subject whole (longer is no subject a person wrote), folded over lines.
_ORIGINAL_SUBJECT_MAX = 500

# RFC 3463 status of a bounce, by the SMSC's code in the stored reason (`reasons.smsc_code`).
# X.1.1 "bad destination mailbox address": the operator refused the number itself, or its network
# knows no such subscriber (`reasons.NUMBER_REFUSED`); a bounce processor then stops mailing that
# address, rightly. Every other failure is 5.0.0, an expiry 5.4.7 (`_status`).
_STATUS_BY_CODE = dict.fromkeys(NUMBER_REFUSED, "5.1.1")
# An ORCPT of the `utf-8` type in its 7-bit form, within RFC 5322's line of 998 with its field name.
_ENCODED_ORCPT_MAX = 960
# A delivery report that the SMS expired at the operator (SMPP stat EXPIRED, CIMD2 061:2): the phone
# stayed out of reach for its whole validity. RFC 3463 X.4.7 "delivery time expired", as the gateway's
# own expiry: one status family for one cause, whoever's clock ran out.
_OPERATOR_EXPIRED = re.compile(
    r"^(?:part \d+ of \d+: |all \d+ parts: |both parts: )?(?:EXPIRED\b|CIMD2 061:2\b)"
)
# How the expiry of a part that waited for its long SMS's link down begins (`partnotes.TIED_EXPIRED`):
# another link was up, but the parts must leave by the SMSC that took one (`gateway.linkchoice`), so
# it is the gateway's outage all the same, for its admin to see to, not a phone out of reach.
_TIED_EXPIRED_SAID = TIED_EXPIRED.split("{}", 1)[0]
_TIED_GONE_SAID = TIED_EXPIRED.split("{}")[1] + LINK_GONE  # that link removed from the configuration
_STUCK_EXPIRED_SAID = STUCK_EXPIRED.split("{}", 1)[0]


def dsn(
    info: dict[str, Any],
    *,
    sender: str,
    rcpt: str,
    reporting_mta: str,
    domain: str,
    lang: Language = "en",
    now: float | None = None,
) -> bytes:
    """A bounce for one SMS message (all its parts), naming the number and the reason (R-6.3).
    `lang`: of the text a person reads and the Subject; the report's fields stay as RFC 3464 has them.
    Several SMS of one mail failing together make one bounce (`gateway.bouncegroup`), of these pieces."""
    human = failure_lines(info, lang) + sms_text(info, lang)
    subject = w.BOUNCE_SUBJECT(lang, number=h.text(info["recipient"], limit=64))
    where = dict(sender=sender, rcpt=rcpt, reporting_mta=reporting_mta, domain=domain)
    return report(info, human, subject, [(info, failure_outcome(info))], now=now, **where)


def failure_lines(info: dict[str, Any], lang: Language) -> str:
    """What a person reads of one failed SMS: that its number was not reached, why, what to do."""
    number = h.text(info["recipient"], limit=64)
    what = w.BOUNCE_STATE.get(info["state"], w.BOUNCE_STATE["failed"])
    said = h.text(info.get("reason") or w.BOUNCE_NO_REASON(lang), limit=900)
    status = _status(info["state"], info.get("reason") or "")
    human = f"{what(lang, number=number)}\n\n{w.BOUNCE_REASON(lang, reason=human_reason(said, lang))}\n"
    return human + f"{_advice(info['state'], info.get('reason') or '', status)(lang)}\n"


def sms_text(info: dict[str, Any], lang: Language) -> str:
    """The SMS text given back, after a blank line; none with RET=HDRS (RFC 3461 4.3): the client
    wants the headers back, not the content."""
    if info.get("dsn_ret") == "hdrs":
        return ""
    return f"\n{w.BOUNCE_TEXT(lang, parts=info['parts_total'])}\n\n{h.body(info['text'])}\n"


def failure_outcome(info: dict[str, Any]) -> dict[str, str]:
    """The per-recipient fields of one failed SMS past its recipient: Action, Status, and what the
    SMSC said, if it said anything."""
    reason = h.text(info.get("reason") or w.BOUNCE_NO_REASON("en"), limit=900)
    outcome = {"Action": "failed", "Status": _status(info["state"], info.get("reason") or "")}
    if from_smsc(info.get("reason")):
        # RFC 3464 2.3.6: the diagnostic type is a registered one (smtp) or an X- token, and the field
        # stays plain: a non-ASCII character would make the email package encode the whole field as
        # an encoded-word, diagnostic type included. Only what the SMSC said: an expiry, an opt-out
        # or a cancel is the gateway's own verdict, which the human part words, not an SMSC's code;
        # an expiry after the operator's refusals gives the refusal (`ESME_RSYSERR (0x08)`).
        said_by_smsc = reason.replace(REFUSED_EXPIRED_SAID, "")
        outcome["Diagnostic-Code"] = f"X-SMSC; {h.ascii_text(said_by_smsc, limit=900)}"
    return outcome


def success_dsn(
    info: dict[str, Any],
    *,
    sender: str,
    rcpt: str,
    reporting_mta: str,
    domain: str,
    lang: Language = "en",
    now: float | None = None,
) -> bytes:
    """The delivery receipt a mail program asked for with `NOTIFY=SUCCESS` (RFC 3461 6.2): a DSN like
    a bounce, so that the program matches it to its mail (ENVID, ORCPT) and shows it as a receipt,
    with the same words a person reads in the plain delivered notice. An `unreported` end, an SMS the
    SMSC took whose report never came, is `relayed` (RFC 3464 2.3.3: handed on to where no receipt
    comes back), not `delivered`. No content is returned with a success (RFC 3461 4.3): the headers."""
    number = h.text(info["recipient"], limit=64)
    parts = w.PARTS(lang, n=info["parts_total"])
    if info.get("state") == "unreported":
        subject = w.UNREPORTED_SUBJECT(lang, number=number)
        said = info.get("reason")
        reason = h.text(human_reason(said, lang) if said else w.UNREPORTED_NO_REASON(lang), limit=900)
        human = w.UNREPORTED_TEXT(lang, number=number, parts=parts, reason=reason)
        action = "relayed"
    else:
        subject = w.DELIVERED_SUBJECT(lang, number=number)
        human = w.DELIVERED_TEXT(lang, number=number, parts=parts)
        action = "delivered"
    outcome = {"Action": action, "Status": "2.0.0"}
    where = dict(sender=sender, rcpt=rcpt, reporting_mta=reporting_mta, domain=domain)
    return report(info, human, subject, [(info, outcome)], now=now, **where)


def report(
    info: dict[str, Any],
    human: str,
    subject: str,
    recipients: list[tuple[dict[str, Any], dict[str, str]]],
    *,
    now: float | None,
    sender: str,
    rcpt: str,
    reporting_mta: str,
    domain: str,
) -> bytes:
    """The multipart/report of RFC 3464 about the SMS of one mail (`info`, the first): `human` for the
    person, the delivery-status fields with each SMS's `outcome` (Action, Status, …) for a program,
    one field group a recipient, and the mail's headers, threaded with the mail it reports on."""
    # compat32, not `h.POLICY`: the generator folds the delivery-status fields by the report's policy,
    # and `policy.default` turns a long Diagnostic-Code into encoded words, which RFC 3464 2.3.6 rules
    # out. compat32 encodes a non-ASCII Subject whole (`email.header.Header`), losing no space.
    mail = MIMEMultipart("report", report_type="delivery-status")
    stamp(
        mail,
        now=now,
        sender=sender,
        rcpt=rcpt,
        subject=subject,
        domain=domain,
        in_reply_to=info.get("header_message_id"),
    )
    mail.attach(_plain(human))
    per_message = Message()
    if info.get("envid"):  # RFC 3464 2.2.1: the client's ENVID, decoded (checked ASCII at MAIL)
        per_message["Original-Envelope-Id"] = _Exact(h.ascii_exact(info["envid"], limit=ENVID_MAX))
    per_message["Reporting-MTA"] = f"dns; {h.text(reporting_mta, limit=200)}"
    per_message["Arrival-Date"] = format_datetime(datetime.fromtimestamp(info["created_at"], UTC))
    blocks = [_per_recipient(one, outcome, domain) for one, outcome in recipients]
    delivery = Message()
    delivery.set_type("message/delivery-status")
    delivery.set_payload([per_message, *(block for block, _final in blocks)])
    mail.attach(delivery)
    headers = Message()
    headers.set_type("text/rfc822-headers")
    headers.set_payload(_original_headers(info, [final for _block, final in blocks]))
    mail.attach(headers)
    return mimewrite.as_bytes(mail)


def _per_recipient(info: dict[str, Any], outcome: dict[str, str], domain: str) -> tuple[Message, str]:
    """One SMS's per-recipient field group (RFC 3464 2.3), and its Final-Recipient's address."""
    per_recipient = Message()
    final = _final_recipient(info, h.text(info["recipient"], limit=64), domain)
    if info.get("orcpt"):  # RFC 3464 2.3.1: the RCPT's ORCPT, `type; address` decoded from xtext
        kind, _, original = str(info["orcpt"]).partition(";")
        # RFC 6533 3: 7-bit utf-8-addr-xtext in a message/delivery-status. A row stored before the
        # `utf-8` type was decoded at RCPT holds that form already (ASCII, with its `\x{…}`).
        limit = ORCPT_MAX
        if kind == "utf-8" and not (original.isascii() and "\\x{" in original):
            # Up to six characters a letter (`\x{F3}`), with no space to fold at: one line still.
            original, limit = utf8_addr_xtext(original), _ENCODED_ORCPT_MAX
        per_recipient["Original-Recipient"] = _Exact(f"{kind}; {h.ascii_exact(original, limit=limit)}")
    per_recipient["Final-Recipient"] = f"rfc822; {final}"
    for name, value in outcome.items():
        per_recipient[name] = value
    return per_recipient, final


class _Exact:
    """A delivery-status field value the generator writes as it is, on one line: compat32 folds a
    `str` by `email.header.Header`, which breaks at spaces, ";" and "," and collapses a run of spaces,
    so that an ENVID of `a+20+20+20b` came back as `a b` once unfolded. RFC 3464 2.2.1: the DSN
    MUST preserve the envelope id's spelling. Bounded by ENVID_MAX and ORCPT_MAX (RFC 3461), the line
    stays far within RFC 5322's 998."""

    def __init__(self, value: str) -> None:
        self.value = value

    def encode(self, linesep: str = "\n", maxlinelen: int | None = None, splitchars: str = "") -> str:
        return self.value

    def __str__(self) -> str:
        return self.value


# RFC 5322 2.1.2's line in a part sent as it is: the text quoted in a bounce may hold a longer word
# (a URL), which a relay splits at 998 (Postfix), or refuses the mail for ("500 Line too long").
_PLAIN_LINE_MAX = 78


def _plain(human: str) -> MIMEText:
    """The part a person reads: 7bit when ASCII in short lines, else quoted-printable, as the
    gateway's other notices (`gateway.notify`): a base64 text part of a few lines scores as spam
    (rspamd MIME_BASE64_TEXT_BOGUS) and no one reads it in the raw mail."""
    if human.isascii() and all(len(line) <= _PLAIN_LINE_MAX for line in human.splitlines()):
        return MIMEText(human, "plain", "us-ascii")
    charset = Charset("utf-8")
    charset.body_encoding = QP
    return MIMEText(human, "plain", charset)  # type: ignore[arg-type]


def _final_recipient(info: dict[str, Any], number: str, domain: str) -> str:
    """RFC 3464 2.3.2: the recipient as this MTA accepted it, the RCPT address as the client gave it
    (`601120000@…`), which is what a bounce processor matches its own mail by. Rows stored before it
    was kept, an SMS no RCPT asked for, and an address no header may carry as it is (SMTPUTF8, a
    quoted local part) name the number at the first gateway domain instead, as bounces always did."""
    given = h.address(info.get("rcpt"))
    return given if "@" in given else h.address(f"{number}@{domain}")


def _advice(state: str, reason: str, status: str) -> w.Phrase:
    """The one line of what to do (`wording.BOUNCE_ADVICE`), by the kind of failure: a number the
    operator refused, an SMS it refused for good for anything else, a cancel, an opt-out, a number no
    link serves any more, an expiry, else a delivery that failed at the phone."""
    if status == "5.1.1":
        return w.BOUNCE_ADVICE["number"]
    if refused_for_good(reason) is not None:  # its sender, text or form: not sent again, even by the admin
        return bw.REFUSED_FOR_GOOD_ADVICE
    if state == "cancelled":
        return w.BOUNCE_ADVICE["cancelled"]
    if OPTED_OUT_SAID in reason:
        return w.BOUNCE_ADVICE["optout"]
    if reason.startswith(NO_ROUTE_SAID):  # the gateway's links, not the phone: its admin can help
        return w.BOUNCE_ADVICE["route"]
    if REFUSED_EXPIRED_SAID in reason:  # the operator's fault: its admin takes it up, not a resend
        return bw.OPERATOR_REFUSED_ADVICE
    if _TIED_EXPIRED_SAID in reason:  # the link that took a part: back later, or gone for good
        return bw.TIED_REMOVED_ADVICE if _TIED_GONE_SAID in reason else bw.TIED_DOWN_ADVICE
    if NO_LINK_EXPIRED in reason:  # the gateway's outage: its admin's
        return bw.NO_LINK_ADVICE
    if _STUCK_EXPIRED_SAID in reason:  # an admin's retry sends it: a resend of the user's too, twice
        return bw.STUCK_ADVICE
    if state == "expired":
        return w.BOUNCE_ADVICE["expired"]
    if status == "5.4.7":  # the operator's own expiry: the phone stayed out of reach
        return bw.UNREACHABLE_ADVICE
    return w.BOUNCE_ADVICE["failed"]


def _status(state: str, reason: str) -> str:
    """The RFC 3463 status: 5.4.7 for an expiry, else the first SMSC code `_STATUS_BY_CODE` knows
    among the parts' reasons, else 5.7.1 for an opt-out, else 5.4.7 for the operator's report that it
    expired, else 5.0.0 (the cause is the SMSC's, which it names in its own terms, or an admin's
    cancel, which no X.7 policy of the recipient's refused: X.7.0 would read as one to a bounce
    processor)."""
    if state == "expired":
        return "5.4.7"
    pieces = reason.split("; ")
    for piece in pieces:
        status = _STATUS_BY_CODE.get(smsc_code(piece) or "")
        if status is not None:
            return status
    if OPTED_OUT_SAID in reason:
        # X.7.1 "delivery not authorized, message refused", as the RCPT of an opted-out number hears
        # it (`550 5.7.1 … opted out`): the same refusal, whether the STOP came before the mail or after.
        return "5.7.1"
    if any(_OPERATOR_EXPIRED.match(piece) for piece in pieces):
        return "5.4.7"
    return "5.0.0"


def _original_headers(info: dict[str, Any], finals: list[str]) -> str:
    """The text/rfc822-headers part: what is kept of the mail that bounced (RFC 3462).

    Only its envelope sender, Subject and Message-ID are stored, so only those are given, and the
    addresses it was sent to as the client gave them at RCPT (`finals`, those the report is about);
    the Subject is what a person recognises their mail by. (An SMTP DSN request's ORCPT is the
    report's Original-Recipient, not a header here.) A non-ASCII Subject is written as an encoded
    word, as in the mail itself: the part stays 7-bit.
    """
    # The mail's own From header is not stored (table emails keeps the envelope sender alone): the
    # envelope sender stands in for it, the address the bounce goes back to anyway.
    fields = [("From", h.address(info["mail_from"])), ("To", ", ".join(finals))]
    subject = h.text(info.get("subject") or "", limit=_ORIGINAL_SUBJECT_MAX)
    if subject:
        fields.append(("Subject", subject))
    msgid = h.msgid(info.get("header_message_id"))
    if msgid:
        fields.append(("Message-ID", msgid))
    if len(finals) > 1 and all(mimewrite.plain_line("To", final) for final in finals):
        # Several addresses, one a line: the email package parsed the whole list again at each
        # bounce of a mail rewritten for one more failed number, most of the time it took (30 ms
        # at 50 numbers). An address is plain as `_final_recipient` writes it.
        written = _written([field for field in fields if field[0] != "To"])
        return written[0] + "To: " + ",\n ".join(finals) + "\n" + "".join(written[1:])
    return "".join(_written(fields))


def _written(fields: list[tuple[str, str]]) -> list[str]:
    """Each field as a header line or lines."""
    if all(mimewrite.plain_line(name, value) for name, value in fields):
        # As `_folded` writes them: each parse and fold by the email package gives the value back.
        return [f"{name}: {value}\n" for name, value in fields]
    return _folded(fields)


def _folded(fields: list[tuple[str, str]]) -> list[str]:
    """The fields as the email package writes them under `mailheaders.POLICY`."""
    original = EmailMessage(policy=h.POLICY)
    for name, value in fields:
        original[name] = value
    return [original.policy.fold(name, value) for name, value in original.items()]
