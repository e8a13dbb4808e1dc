"""The mails that carry a phone's answer: to its conversation's user, to the fallback address, and
what happens when the relay refuses one for good.

Queued in the caller's write (the MO's, or the refusal's), so that the answer is neither lost nor
mailed twice. A refused answer goes on to `[replies] fallback_address` in the write that records
the refusal (`answer_refused`, registered with the outbox for both kinds).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog

from gateway import forwarded
from gateway.config import Config
from gateway.conversations.numbers import display
from gateway.conversations.repo import Conversation, ConversationsRepo
from gateway.mailcopy import fallback_for
from gateway.smtp.domainsserved import normal
from gateway.smtp.subjects import sms_from
from gateway.store.db import Store
from gateway.store.mo import MoRepo
from gateway.store.outbox import NOT_SENT, Fallback, OutboxRepo, RefusedMail, on_refused
from gateway.wording import Language

log = structlog.get_logger(__name__)


def mail_user(
    store: Store,
    cfg: Config,
    conv: Conversation,
    text: str,
    note: str | None,
    mo_id: int,
    kind: str = "reply",
) -> None:
    """In the conversation's thread, from the phone; `kind` "reply-kept" for a flood's kept answers."""
    tz = ZoneInfo(cfg.gateway.timezone)
    content = forwarded.sms_reply(
        phone=conv.phone,
        phone_display=display(conv.phone),
        domain=from_domain(conv.domain, cfg.gateway.domains),
        rcpt=conv.user_email,
        subject=conv.subject,
        text=text,
        quoted=conv.text,
        quoted_at=datetime.fromtimestamp(conv.last_mt_at, tz),
        in_reply_to=conv.header_message_id,
        references=conv.refs,
        note=note,
        lang=cfg.gateway.language,
        contact=conv.name,
        now=store.clock(),
    )
    fallback = fallback_for(cfg, cfg.replies.fallback_address, conv.user_email)
    store.outbox.enqueue_mail(
        kind, cfg.mail.from_address, conv.user_email, content, mo_ref=mo_id, fallback=fallback
    )


def mail_fallback(
    outbox: OutboxRepo,
    to: Fallback,
    mo_id: int,
    *,
    phone: str | None,
    domain: str,
    subject: str,
    text: str,
    note: str,
    answered: Conversation | None = None,
) -> None:
    """An answer no user gets (or whose user's mail was refused) to the fallback address, from the
    phone (a Reply there answers it), its note saying why it came there, and the user's SMS it
    answers (`answered`) quoted as theirs: or, past the reply window, the last one sent to the phone
    from that number, so that the operator can tell whose it likely is without a search. Refused in
    turn, it goes nowhere else (it has no fallback of its own): only the MO's note tells of it."""
    content = unthreaded(
        phone,
        domain,
        to.rcpt,
        subject,
        text,
        note,
        answered,
        zone=to.settings.zone,
        sender=to.settings.sender,
        lang=to.settings.language,
        now=outbox.clock(),
    )
    outbox.enqueue_mail("reply-fallback", to.settings.sender, to.rcpt, content, mo_ref=mo_id)


def unthreaded(
    phone: str | None,
    domain: str,
    rcpt: str,
    subject: str,
    text: str,
    note: str,
    answered: Conversation | None,
    *,
    zone: str,
    sender: str,
    lang: Language,
    now: float | None = None,
) -> bytes:
    """An answer's mail to an address that wrote no mail it answers (the fallback, an account's
    inbound address): from the phone, the SMS it most likely answers (`answered`) quoted as its
    user's, as the user's own copy named the phone."""
    when = datetime.fromtimestamp(answered.last_mt_at, ZoneInfo(zone)) if answered else None
    return forwarded.sms_reply(
        phone=phone or "",
        phone_display=display(phone) if phone else "SMS",
        domain=domain,
        rcpt=rcpt,
        subject=subject,
        text=text,
        quoted=answered.text if answered else None,
        quoted_at=when,
        quoted_by=answered.user_email if answered else None,
        in_reply_to=None,
        note=note,
        gateway_address=sender,
        lang=lang,
        now=now,
        contact=answered.name if answered else None,
    )


def from_domain(stored: str | None, domains: Sequence[str]) -> str:
    """The domain a phone's mail comes from: its conversation's while the gateway still serves it, else
    the first. An answer From a domain dropped from `[gateway] domains` drew replies the gateway now
    refuses (`gateway.smtp.formerdomains`), and each new answer gave out another such address."""
    return stored if stored and normal(stored) in {normal(d) for d in domains} else domains[0]


def _title(mail: RefusedMail, phone: str, number: str, lang: Language) -> str:
    """The copy's subject says why it came: the relay refused the mail, or the gateway held it back
    (its user left, or the address was given to someone else: `gateway.store.outbox.on_claim`).
    "SMS from … to … for <address>" is read back (`gateway.smtp.subjects`); Polish names the address
    within the brackets."""
    held = mail.error.startswith(NOT_SENT)
    if lang == "pl":
        why = "nie wysłano na adres" if held else "odrzucono pocztę do"
        return f"{sms_from(phone)} to {number} ({why} {mail.rcpt})"
    why = "not sent to that address" if held else "its mail was refused"
    return f"{sms_from(phone)} to {number} for {mail.rcpt} ({why})"


def answer_refused(outbox: OutboxRepo, mail: RefusedMail) -> None:
    """Inside the write that records it: the relay refused a mail with a phone's answer for good (a
    user who has left: `550 5.1.1 User unknown` at RCPT), or it ran out of attempts. The answer goes
    to the fallback address, as the same failure reported later by a bounce does, and the MO says
    what became of it: `fallback`, or `failed` where there is nowhere else to send it."""
    r = ConversationsRepo(outbox.db, outbox.clock)
    mo = r.find_mo(mail.mo_ref)
    to = mail.fallback
    said = mail.said
    if to is not None and mo is not None:
        conv = r.answered_in(mo.id)  # quoting the SMS the phone answered, not the user's newer one
        phone, number = (conv.phone, conv.number) if conv else (mo.source, mo.destination)
        mail_fallback(
            outbox,
            to,
            mo.id,
            phone=phone,
            domain=(conv.domain if conv else "") or to.settings.domain,
            subject=_title(mail, phone, number, to.settings.language),
            text=mo.text,
            note=f"Not delivered: {said}. Sent to the fallback address instead",
            answered=conv,
        )
        MoRepo(outbox.db, outbox.clock).answer_refused(mo.id, "fallback", f"{said}; sent to {to.rcpt}")
    elif mail.kind == "reply":
        nowhere = f"{said}; no other address to send it to ([replies] fallback_address)"
        MoRepo(outbox.db, outbox.clock).answer_refused(mail.mo_ref, "failed", nowhere)
    else:  # the copy to the fallback address: not sent on again
        MoRepo(outbox.db, outbox.clock).answer_refused(mail.mo_ref, "failed", said)
    log.warning(
        "mo.mail_refused",
        mo=mail.mo_ref,
        kind=mail.kind,
        to=mail.rcpt,
        sent_to=to.rcpt if to is not None and mo is not None else None,
        error=mail.error,
    )


on_refused(("reply", "reply-fallback"), answer_refused)
