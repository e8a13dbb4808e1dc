"""Mail to an answer or confirmation address (R-4.3, R-4.5): decided and written in one write().

Both addresses are accepted on the relay port from any network, as an MX takes mail for its own
domain. An answer is authenticated by the unguessable token in its address together with the
envelope sender being on the service's reply ACL (for an auto-reply sent with an empty envelope
sender, the From address): a forged sender still needs the token. Every refusal is recorded
against its MO and never uses up one of its `answers_per_mo` free answers. Bounces, delivery
and read reports are recorded and answered `250` (refusing them would only make more bounces).
"""

from __future__ import annotations

import sqlite3
from email.parser import BytesParser
from email.policy import compat32
from email.utils import parseaddr

import structlog

from gateway import notify
from gateway.config import Config
from gateway.conversations.numbers import display
from gateway.premium import handlers
from gateway.premium.passwords import Target
from gateway.smtp import replies
from gateway.smtp.intake import IntakeOptions, IntakeRefused, MailText, read_mail
from gateway.store.db import Store, StoreBusy, StoreReplaced
from gateway.store.records import Acceptance, NewMessage, NewPart
from smsc.encoding import EmptyText, plan

log = structlog.get_logger(__name__)

_HEADERS = BytesParser(policy=compat32)
_EMPTY_SENDER = "bounce (empty envelope sender)"
# Machine mail that is never an answer; auto-replies and out-of-office notices are.
_NOT_ANSWERS = (
    "delivery status",
    "read receipt",
    "report",
    "abuse",
    "bounce (From",
    "Outlook recall",
    "meeting response",
    "Precedence: list",
    "Precedence: junk",
)


def known(store: Store, target: Target) -> bool:
    """At RCPT: does the token name an MO or a confirmation (no write, no detail for a guesser)."""
    r = handlers.repo(store)
    if target.kind == "premium":
        return r.by_token(target.token) is not None
    return r.verification(target.token) is not None


def not_an_answer(automatic: str | None) -> str | None:
    """Why a machine mail cannot be an answer; None for a person's mail or an auto-reply."""
    if not automatic:
        return None
    reasons = [p.strip() for p in automatic.split(";")]
    machine = [p for p in reasons if p != _EMPTY_SENDER]
    if not machine:
        return _EMPTY_SENDER
    return automatic if any(p.startswith(_NOT_ANSWERS) for p in machine) else None


async def on_mail(store: Store, cfg: Config, target: Target, mail_from: str, raw: bytes) -> tuple[str, bool]:
    """The SMTP reply for DATA to an answer or confirmation address, and whether an SMS was queued.

    A store that cannot take the write answers `451`: the client's server tries again later.
    """
    try:
        return await _on_mail(store, cfg, target, mail_from, raw)
    except StoreReplaced:  # logged at critical where it was seen; the daemon is stopping
        return replies.STORE_REPLACED, False
    except (StoreBusy, sqlite3.OperationalError, OSError) as exc:
        log.error("premium.store_failed", error=repr(exc))
        return replies.TEMP_FAILURE, False


async def _on_mail(store: Store, cfg: Config, target: Target, mail_from: str, raw: bytes) -> tuple[str, bool]:
    opts = IntakeOptions(
        subject_max=0, end_marker=None, charset_fallbacks=tuple(cfg.gateway.charset_fallbacks)
    )
    try:
        mail: MailText | IntakeRefused = read_mail(raw, opts, empty_sender=not mail_from)
    except IntakeRefused as exc:
        mail = exc
    author = mail_from
    if not author:  # an auto-reply sent with a null Return-Path answers for the From address
        head = _HEADERS.parsebytes(raw.replace(b"\r\n", b"\n")[:65536], headersonly=True)
        author = parseaddr(str(head.get("From", "")))[1]
    if target.kind == "confirm":
        return await store.write(lambda: confirm(store, cfg, target.token, mail), interactive=True), False
    return await store.write(
        lambda: answer(store, cfg, target.token, mail_from, author, mail), interactive=True
    )


def confirm(store: Store, cfg: Config, token: str, mail: MailText | IntakeRefused) -> str:
    """R-4.3: the address answered its confirmation: forwarding starts, kept MOs are mailed in order."""
    r = handlers.repo(store)
    v = r.verification(token)
    if v is None:
        return replies.PREMIUM_UNKNOWN_ADDRESS.format("confirm")
    if isinstance(mail, MailText) and (why := not_an_answer(mail.automatic)):
        log.info("premium.confirm_ignored", reason=why)
        return replies.OK_NOT_SENT.format(why)
    service = r.service(v.service_id)
    if service.removed_at is not None:
        return replies.PREMIUM_SERVICE_GONE.format(service.password)
    if service.email.casefold() != v.email.casefold():
        return replies.PREMIUM_CONFIRM_STALE.format(service.password)
    if v.used_at is not None:
        return replies.PREMIUM_ALREADY_CONFIRMED.format(service.password)
    if v.expires_at < store.clock():
        return replies.PREMIUM_CONFIRM_EXPIRED
    r.use_verification(token)
    r.update_service(service.id, verified_at=store.clock())
    sent = handlers.forward_awaiting(store, cfg, service)
    log.info("premium.confirmed", service=service.password, forwarded=sent)
    return replies.PREMIUM_CONFIRMED.format(service.password, sent)


def answer(
    store: Store, cfg: Config, token: str, mail_from: str, author: str, mail: MailText | IntakeRefused
) -> tuple[str, bool]:
    """R-4.5: one free SMS from the premium number to the phone, or a recorded refusal."""
    r = handlers.repo(store)
    pmo = r.by_token(token)
    if pmo is None or pmo.service_id is None:
        return replies.PREMIUM_UNKNOWN_ADDRESS.format("premium"), False
    msgid = mail.message_id if isinstance(mail, MailText) else None

    def refuse(reply: str, reason: str) -> tuple[str, bool]:
        r.record_answer(pmo.id, author, msgid, "refused", reason)
        log.info("premium.answer_refused", mo=pmo.mo_id, reason=reason)
        return reply, False

    if isinstance(mail, MailText) and (why := not_an_answer(mail.automatic)):
        return refuse(replies.OK_NOT_SENT.format(why), why)
    service = r.service(pmo.service_id)
    if service.removed_at is not None:
        return refuse(replies.PREMIUM_SERVICE_GONE.format(service.password), "service removed")
    if not author or not r.acl_allows(service.id, author):
        return refuse(replies.PREMIUM_NOT_ON_ACL.format(author), "sender not on the reply ACL")
    if pmo.forwarded_at is None:
        return refuse(replies.PREMIUM_NOT_FORWARDED, "answer before the MO was mailed")
    if pmo.forwarded_at < store.clock() - cfg.replies.window_seconds:
        return refuse(replies.PREMIUM_TOO_OLD.format(cfg.replies.window_days), "older than the reply window")
    if msgid and r.answered_before(pmo.id, msgid):
        return replies.OK_DUPLICATE, False
    if pmo.answers >= cfg.premium.answers_per_mo:
        return refuse(replies.PREMIUM_ANSWERED.format(pmo.answers), "no free answers left")
    if isinstance(mail, IntakeRefused):
        return refuse(mail.reply, mail.reply)
    if store.policy.is_opted_out(pmo.phone):  # a STOP since the vote ends every SMS to it
        return refuse(replies.OPTED_OUT.format(display(pmo.phone)), "the phone opted out")
    try:
        p = plan(mail.body, max_parts=1)  # one SMS, never more: the answer is free
    except EmptyText:
        return refuse(replies.ONLY_QUOTE, "no text besides the quote")
    part = p.parts[0]
    acceptance = Acceptance(
        mail_from=author,
        client_ip=None,
        account_id=service.account_id,
        user_id=None,
        header_message_id=msgid,
        dedup_key=None,
        subject="",
        text=p.text,
        messages=[
            NewMessage(
                pmo.phone,
                pmo.number,
                p.text,
                int(p.coding),
                [NewPart(1, int(p.coding), part.payload, b"", part.text)],
            )
        ],
        validity_seconds=3600 * cfg.gateway.validity_hours,
    )
    result = store.queue.insert_email(acceptance)
    r.record_answer(
        pmo.id, author, msgid, "sent", message_id=result.message_ids[0], text=p.text, cut=p.truncated
    )
    if p.truncated and mail_from and not mail.automatic:
        store.outbox.enqueue_mail(
            "premium-cut",
            cfg.mail.from_address,
            mail_from,
            notify.premium_answer_cut(
                sender=cfg.mail.from_address,
                rcpt=mail_from,
                domain=cfg.gateway.hostname,
                phone=display(pmo.phone),
                sent=p.text,
                dropped=p.dropped,
                in_reply_to=msgid,
            ),
        )
    log.info("premium.answered", mo=pmo.mo_id, message=result.message_ids[0], cut=p.truncated)
    return replies.OK_QUEUED.format(result.email_id), True
