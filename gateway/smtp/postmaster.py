"""Mail to postmaster and to the gateway's own notice address, as RFC 5321 4.5.1 wants them taken.

Postmaster (domainless or at a gateway domain) must reach a person: such a mail is recorded like
any other and handed to `[mail] admin_address` through the outbox, as a bounce is handed to the
fallback address (`forwarded.bounce_forward`, sent from <> with its loop mark). The notice address
(`[mail] from_address`) takes bounces only (relay.py); a person answering a notice is told where
to write instead of that the address is "not a valid phone number".
"""

from __future__ import annotations

import hashlib
from email.parser import BytesParser
from email.policy import compat32
from typing import Any

from aiosmtpd.smtp import Envelope

from gateway import forwarded
from gateway.config import Config
from gateway.smtp import replies
from gateway.smtp.accept import Notice
from gateway.smtp.charsets import decode_header
from gateway.smtp.intake import IntakeOptions, IntakeRefused, read_mail
from gateway.store.records import Acceptance

# Recorded as the mail's reason for not becoming SMS, and said in the `250`.
FORWARDED = "mail to postmaster, forwarded to the gateway's administrator"
# A mail that is itself one of our forwards (the admin address an alias back to postmaster here).
LOOPED = "mail to postmaster that is a forward of the gateway's own; recorded, not forwarded again"
# The recipients a postmaster mail may not share its transaction with (each is handled its own way).
_OTHERS = frozenset({"premium", "numbers", "info", "mailboxes"})


def is_postmaster(local: str) -> bool:
    return local.casefold() == "postmaster"


def take(envelope: Envelope, address: str) -> str:
    """RCPT of postmaster from a sender with an address: alone in its mail, one forward however named."""
    if _OTHERS & envelope.__dict__.keys():
        return replies.POSTMASTER_ALONE
    if "postmaster" not in envelope.__dict__:
        envelope.__dict__["postmaster"] = address
        envelope.rcpt_tos.append(address)
    return replies.OK_RCPT


def refuses_others(envelope: Envelope) -> str | None:
    """The reply to any other recipient of a mail that already names postmaster."""
    return replies.POSTMASTER_ALONE if "postmaster" in envelope.__dict__ else None


def notices_only(cfg: Config, local: str, domain: str, address: str) -> str | None:
    """The refusal of a person's mail to the address the gateway's notices come from."""
    if f"{local}@{domain}".casefold() != cfg.mail.from_address.casefold():
        return None
    return replies.NOTICES_ONLY.format(address, cfg.mail.admin_address)


def forward(
    cfg: Config, envelope: Envelope, sender: Any, raw: bytes, client_ip: str | None
) -> tuple[Acceptance, list[Notice]]:
    """The record of a postmaster mail and its forward to the admin address (none for our own forward).

    `sender` is relay.py's `Sender`. The dedup key is the mail's own, not its SMS one: a mail sent to
    a phone and to postmaster gets `452` for postmaster and comes again alone, with the same id."""
    head = BytesParser(policy=compat32).parsebytes(raw, headersonly=True)
    fallbacks = tuple(cfg.gateway.charset_fallbacks)
    subject = decode_header(str(head.get("subject", "")), fallbacks)
    message_id = str(head.get("message-id", "")).strip() or None
    try:
        text = read_mail(raw, IntakeOptions(end_marker=None, charset_fallbacks=fallbacks)).text
    except IntakeRefused:
        text = ""  # an empty or unreadable mail is still forwarded: a person reads the original
    looped = forwarded.FORWARD_MARK.encode().lower() in raw.lower()
    dedup = None
    if message_id:
        dedup = hashlib.sha256(f"postmaster\0{message_id}\0{sender.mail_from}".encode()).hexdigest()
    acceptance = Acceptance(
        mail_from=sender.mail_from,
        client_ip=client_ip,
        account_id=sender.account.id if sender.account else None,
        user_id=sender.user.id if sender.user else None,
        header_message_id=message_id,
        dedup_key=dedup,
        subject=subject,
        text=text,
        messages=[],
        validity_seconds=0,
        automatic=LOOPED if looped else FORWARDED,
    )
    if looped:
        return acceptance, []
    admin = cfg.mail.admin_address
    content = forwarded.bounce_forward(
        sender=cfg.mail.from_address,
        rcpt=admin,
        domain=cfg.gateway.hostname,
        subject=subject,
        reason=f"addressed to <{envelope.__dict__['postmaster']}>",
        mail_from=sender.mail_from,
        client_ip=client_ip,
        numbers=[str(envelope.__dict__["postmaster"])],
        raw=raw,
        what="mail to postmaster",
    )
    # From <>, as a bounce's forward: nothing answers it, so no loop can start (RFC 3834).
    return acceptance, [Notice("postmaster-forward", "", admin, content)]
