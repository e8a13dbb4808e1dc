"""Mail to an answer or confirmation address (R-4.3, R-4.5): decided and written in one write().

Both addresses are accepted on the relay port from any network, as an MX takes mail for its own
domain. An answer is authenticated by the unguessable token in its address together with the
envelope sender being on the service's reply ACL (the one it had for the vote's account,
`replylist`; for an auto-reply sent with an empty envelope sender, the From address): a forged
sender still needs the token. Every refusal is recorded against its MO and never uses up one of
its `answers_per_mo` free answers. Bounces, delivery
and read reports are recorded and answered `250` (refusing them would only make more bounces).
The relay port's side (RCPT, reading the mail, a store that cannot write) is gateway/premium/intake.py.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog

from acl.accounts import without_batv
from gateway import accountrules, bouncetriage, forwarded, notify
from gateway.config import Config
from gateway.conversations.numbers import display
from gateway.linkmoves import mo_link
from gateway.premium import confirmation, corrections, handlers, replylist, responders, shortcode
from gateway.smtp import replies
from gateway.smtp.addressing import kind_words, number_kind
from gateway.smtp.identical import identical_refusal, start_of_day
from gateway.smtp.intake import IntakeRefused, MailText
from gateway.smtp.recipients import as_given, router_for
from gateway.store import forwardsteps
from gateway.store.db import Store
from gateway.store.records import Acceptance, NewMessage, NewPart
from smsc.encoding import EmptyText, plan

log = structlog.get_logger(__name__)

# The relay's words for such a number (`replies.NOT_SERVED`), which admins grep logs for.
PREMIUM_NOT_SERVED = (
    "550 5.1.1 {}: {} numbers are not served by this gateway: this premium SMS cannot be answered by SMS"
)

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
    "the gateway's own notice",  # automail.OWN_NOTICE: ours, sent back by a mail rule
)


def not_an_answer(automatic: str | None) -> str | None:
    """Why a machine mail cannot be an answer; None for a person's mail or an auto-reply."""
    if not automatic:
        return None
    reasons = [p.strip() for p in automatic.split(";")]
    machine = [p for p in reasons if p != _EMPTY_SENDER]
    if not machine:
        return _EMPTY_SENDER
    return automatic if any(p.startswith(_NOT_ANSWERS) for p in machine) else None


def confirm(
    store: Store,
    cfg: Config,
    token: str,
    mail: MailText | IntakeRefused,
    *,
    raw: bytes = b"",
    mail_from: str = "",
    client_ip: str | None = None,
) -> str:
    """R-4.3: the address answered its confirmation: forwarding starts, kept MOs are mailed in order.

    Only a person's mail confirms. An out-of-office reply from the address proves nobody read the
    confirmation, whose text promises that nothing is sent unless someone answers it: automatic
    mail of any kind (a responder's too, by marks the staff mail's rules leave to a person:
    `responders`) is recorded (logged; a bounce forwarded with `raw`, the mail as received,
    `mail_from`, its envelope sender, and `client_ip`, the server that sent it) and the token
    stays good.
    """
    r = handlers.repo(store)
    v = r.verification(token)
    if v is None:
        return replies.PREMIUM_UNKNOWN_ADDRESS.format("confirm")
    service = r.service(v.service_id)
    automatic = mail.automatic if isinstance(mail, MailText) else None
    if not automatic:  # what is machine mail here but not on the way to a phone (`responders`)
        subject = mail.subject if isinstance(mail, MailText) else None
        automatic = responders.responder_reason(raw, subject, service.password) if raw else None
    if automatic == responders.SUBJECT_GUESS:  # perhaps a person's words: they hear why (a bounce)
        log.info("premium.confirm_refused", service=service.password, reason=automatic)
        return replies.PREMIUM_CONFIRM_LOOKS_AUTOMATIC.format(service.password)
    if automatic:
        sent = False
        if isinstance(mail, MailText) and mail.automatic:
            about = [f"confirmation of premium service {service.password}", v.email]
            sent_by = (mail_from, client_ip)
            sent = _forward_bounce(
                store, cfg, mail, raw, sent_by, f"confirm-{token}", service.account_id, about
            )
        log.info("premium.confirm_ignored", service=service.password, reason=automatic, forwarded=sent)
        return replies.OK_NOT_SENT.format(f"{automatic}; automatic mail, not a confirmation")
    if service.removed_at is not None:
        if r.active_service(service.password) is not None:  # removed, and the password added again
            return replies.PREMIUM_CONFIRM_OF_EARLIER.format(service.password)
        return replies.PREMIUM_CONFIRM_OF_REMOVED.format(service.password)
    if service.email.casefold() != v.email.casefold():
        return replies.PREMIUM_CONFIRM_STALE.format(service.password)
    if v.used_at is not None or service.verified_at is not None:  # by this mail or a newer one
        return replies.PREMIUM_ALREADY_CONFIRMED.format(service.password)
    if confirmation.token_expired(r.conn, v.created_at, v.expires_at, store.clock()):
        return replies.PREMIUM_CONFIRM_REPLACED if v.replaced else replies.PREMIUM_CONFIRM_EXPIRED
    r.use_verification(token)
    r.update_service(service.id, verified_at=store.clock())
    sent = handlers.forward_awaiting(store, cfg, service)
    log.info("premium.confirmed", service=service.password, forwarded=sent)
    return replies.PREMIUM_CONFIRMED.format(service.password, sent)


def answer(
    store: Store,
    cfg: Config,
    token: str,
    mail_from: str,
    author: str,
    mail: MailText | IntakeRefused,
    *,
    raw: bytes = b"",
    client_ip: str | None = None,
    rcpt: str | None = None,
) -> tuple[str, bool]:
    """R-4.5: one free SMS from the premium number to the phone, or a recorded refusal.

    `raw` is the mail as received: a bounce (the client's mailbox refused the premium SMS mailed
    from this address) is handed to the fallback address with it attached. `client_ip`, the
    server that sent it, is recorded with the answer and named in a bounce's forward. `rcpt`, the
    answer address as the client gave it, and the mail's subject are kept as a staff mail's are: the
    report of the answer's SMS names them, not the phone's number at the gateway's domain.
    """
    r = handlers.repo(store)
    pmo = r.by_token(token)
    if pmo is None or pmo.service_id is None:
        return replies.PREMIUM_UNKNOWN_ADDRESS.format("premium"), False
    msgid = mail.message_id if isinstance(mail, MailText) else None
    # A tagging server writes a new BATV tag into its sender daily: recorded with the tag, one person
    # was a new "user" of the account's bill each day, and `premium answers` listed each tag. The
    # tagged envelope is kept for the report of the answer's SMS (a bounce to an untagged address is
    # refused by such a server); the refusal at DATA and the cut notice go to it as received.
    sender = without_batv(author)
    envelope = author if sender != author else None

    def refuse(reply: str, reason: str) -> tuple[str, bool]:
        r.record_answer(pmo.id, sender, msgid, "refused", reason, envelope=envelope)
        log.info("premium.answer_refused", mo=pmo.mo_id, sender=sender, reason=reason)
        return reply, False

    # A bounce is never an answer, whatever else it says (Exim's come from <> as auto-replied).
    bounce = isinstance(mail, MailText) and _bounce(mail, raw)
    if isinstance(mail, MailText) and (why := mail.automatic if bounce else not_an_answer(mail.automatic)):
        if bounce:
            phone = display(pmo.phone) if pmo.phone.startswith("+") else pmo.phone
            about = [f"premium SMS {pmo.password} · {pmo.number} · {phone}"]
            sent_by = (mail_from, client_ip)
            address = f"premium-{token}"
            _forward_bounce(store, cfg, mail, raw, sent_by, address, pmo.account_id, about, pmo.id)
        return refuse(replies.OK_NOT_SENT.format(why), why)
    service = r.service(pmo.service_id)
    # The SMS a service received while it existed stay answerable after `premium remove`, within the
    # reply window and by the same rules: the phone paid for the vote and its answer. Nothing comes
    # after the removal (a removed service's password is unknown, its late parts no client's).
    if service.removed_at is not None and pmo.received_at >= service.removed_at:
        return refuse(replies.PREMIUM_SERVICE_GONE.format(service.password), "service removed")
    # The vote is its account's, whatever account the service was moved to since (`premium set
    # --account`): it was mailed to that client, its commission is in that account's bill, and so are
    # who may answer it (`replylist`), its answer's rules, suspension, reply window and billing line
    # . Its account is the one a correction moved it to, if any: a kept vote of a
    # billed month mailed to the client its service moved to is that client's (`moves.kept_to`).
    vote = corrections.owner(r, pmo)
    account = store.accounts.account_by_id(
        vote.account_id if vote.account_id is not None else service.account_id
    )
    allowed = bool(author) and replylist.may_answer(r, service, vote, (author, sender))
    if account.id != service.account_id and (
        moved := replylist.moved_refusal(store, r, service, account.name, (author, sender), allowed)
    ):
        return refuse(*moved)
    if not allowed:
        return refuse(replies.PREMIUM_NOT_ON_ACL.format(author), "sender not on the reply ACL")
    if pmo.forwarded_at is None:
        return refuse(replies.PREMIUM_NOT_FORWARDED, "answer before the MO was mailed")
    window_days = accountrules.reply_window_days(cfg, account.reply_window_days)
    if forwardsteps.past(r.conn, pmo.forwarded_at, store.clock(), window_days * 86400):
        return refuse(replies.PREMIUM_TOO_OLD.format(window_days), "older than the reply window")
    if msgid and r.answered_before(pmo.id, msgid):
        return replies.OK_DUPLICATE, False
    if account.suspended_at is not None:
        # Refused as the relay refuses the account's staff: queued, the SMS would wait unsent for the
        # resume and might expire with the free answer spent, and nobody would know. The public's
        # premium SMS are still mailed to the client meanwhile (`handlers.on_whole_mo`: they paid).
        why = account.suspended_reason or "ask your admin"
        return refuse(replies.SUSPENDED.format(account.name, why), f"account suspended: {why}")
    # The counter first: below the limit (the common case) nothing more is read.
    if (
        pmo.answers >= cfg.premium.answers_per_mo
        and (used := r.answers_used(pmo.id)) >= cfg.premium.answers_per_mo
    ):
        return refuse(replies.PREMIUM_ANSWERED.format(used), "no free answers left")
    if isinstance(mail, IntakeRefused):
        # Read without its subject (`premium.intake`): "no subject" is false of "RE: KP123 · 7355".
        said = replies.body_only(mail.reply)
        return refuse(said, said)
    # As the relay refuses them to everyone: a premium-rate or satellite number's SMS costs many times
    # a mobile's and a toll-free one's reaches nobody, and a vote "from" one may be spoofed to have
    # the client's answer (or its out-of-office) sent there at the operator's cost (SMS pumping).
    if (kind := number_kind(pmo.phone)) not in cfg.gateway.number_types:
        words = kind_words(kind)
        refusal = PREMIUM_NOT_SERVED.format(display(pmo.phone), words)
        return refuse(refusal, f"{words} numbers are not served ([gateway] number_types)")
    # A STOP since the vote ends every SMS to it; one from before it does not, as the phone
    # has paid for this answer since. The same for the list of the vote's account's own admin.
    if store.policy.opted_out_since(pmo.phone, pmo.received_at):
        refusal = replies.opted_out(display(pmo.phone), cfg.gateway.optin_words)
        return refuse(refusal, "the phone opted out")
    if _account_listed_since(store, account.id, pmo.phone, pmo.received_at):
        refusal = replies.opted_out(display(pmo.phone), cfg.gateway.optin_words, ("account",))
        return refuse(refusal, "the account's admin listed the phone")
    # The answer leaves from the short code by the link the vote came by (its operator knows the
    # short code; a foreign phone that voted through it is reached by it), else by the phone's routes.
    # The bind, not the name: a block whose `type` changed since is another bind (`linkmoves`).
    via = mo_link(store.db.conn, pmo.mo_id)
    if via not in {link.name for link in cfg.smsc}:
        via = None
        if not router_for(cfg).serves(pmo.phone):
            # No link serves the phone (a foreign one, with no default route) and the vote's link
            # is gone from the config: queued, the free answer would wait unsent until it expired,
            # and the client would never know. As the relay refuses such a number at RCPT.
            why = "no SMSC link serves the phone"
            return refuse(replies.PREMIUM_NO_ROUTE.format(display(pmo.phone)), why)
    # Never sent from another number and recorded as sent from the short code (`shortcode`).
    links = shortcode.answer_links(cfg, via, pmo.phone)
    if (lost := shortcode.losing_link(cfg, pmo.number, links)) is not None:
        why = f"link {lost.name} cannot send from {pmo.number} (sender_prefix {lost.sender_prefix})"
        log.warning("premium.answer_without_short_code", mo=pmo.mo_id, link=lost.name, number=pmo.number)
        return refuse(shortcode.PREMIUM_NO_SHORT_CODE.format(pmo.number, lost.name, lost.sender_prefix), why)
    try:
        # One SMS, never more: the answer is free. Transliterated as the account's staff SMS are, so
        # that a Polish answer goes whole in GSM rather than cut to 70 UCS-2 characters.
        p = plan(mail.body, max_parts=1, transliterate=account.transliterate, latin1=cfg.dc0_latin1)
    except EmptyText:
        return refuse(replies.body_only(replies.ONLY_QUOTE), "no text besides the quote")
    # R-2.4's operator rule holds for answers as for staff mail: a client's mail rule answering
    # every vote with one text sent it to a phone that voted five times in a day.
    today = start_of_day(datetime.fromtimestamp(store.clock(), ZoneInfo(cfg.gateway.timezone)))
    if store.policy.identical_count(pmo.phone, p.text, today) >= cfg.gateway.identical_per_day:
        why = f"more than {cfg.gateway.identical_per_day} identical SMS to the phone today"
        return refuse(identical_refusal(cfg, pmo.phone), why)
    part = p.parts[0]
    acceptance = Acceptance(
        mail_from=sender,
        client_ip=client_ip,
        account_id=account.id,
        user_id=None,
        header_message_id=msgid,
        dedup_key=None,
        subject=mail.subject,
        text=p.text,
        messages=[
            NewMessage(
                pmo.phone,
                pmo.number,
                p.text,
                int(p.coding),
                [NewPart(1, int(p.coding), part.payload, b"", part.text)],
                via=via,
                rcpt=as_given(rcpt),
            )
        ],
        validity_seconds=accountrules.validity_seconds(cfg, account),
    )
    result = store.queue.insert_email(acceptance)
    r.record_answer(
        pmo.id,
        sender,
        msgid,
        "sent",
        message_id=result.message_ids[0],
        text=p.text,
        cut=p.truncated,
        envelope=envelope,
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
                lang=cfg.gateway.language,
                now=store.clock(),
            ),
            message_ref=result.message_ids[0],  # it quotes the answer to the phone
        )
    log.info("premium.answered", mo=pmo.mo_id, message=result.message_ids[0], cut=p.truncated)
    return replies.OK_QUEUED.format(result.email_id), True


def _account_listed_since(store: Store, account_id: int, phone: str, since: float) -> bool:
    """The account's admin listed the phone at or after `since` (the vote): the claim stops only
    SMS accepted before an entry (`claims`), so an answer accepted now would go."""
    row = store.db.conn.execute(
        "SELECT 1 FROM account_optouts WHERE account_id = ? AND number = ? AND created_at >= ?",
        (account_id, phone, since),
    ).fetchone()
    return row is not None


def _bounce(mail: MailText, raw: bytes) -> bool:
    """R-1.7: a bounce that tells of mail gone astray (not a success report or a vacation reply)."""
    return bool(mail.automatic and raw and bouncetriage.worth_forwarding(mail.automatic, raw))


def _forward_bounce(
    store: Store,
    cfg: Config,
    mail: MailText,
    raw: bytes,
    sent_by: tuple[str, str | None],
    address: str,
    account_id: int | None,
    about: list[str],
    premium_ref: int | None = None,
) -> bool:
    """Inside the mail's write: hand a bounce to the premium fallback address; whether it was queued.

    As on the relay port (`gateway.smtp.accept`), the forward has an empty envelope sender, so
    nothing answers it, and a bounce delivered again (our `250` was lost) is forwarded once: the
    first forward leaves a machine-mail row in `emails` keyed by the address and the Message-ID,
    which `recorded_before` finds. A bounce without a Message-ID cannot be told from the next
    one, and is forwarded each time (as there). `sent_by` is its envelope sender and the address
    of the server that sent it, `address` the local part it was sent to (never logged: it holds
    the token), `about` names what bounced, for the operator; `premium_ref` the premium SMS whose mail
    bounced (the bounce quotes it: `smsgw phone forget` erases the forward with it).
    """
    mail_from, client_ip = sent_by
    fallback = cfg.premium_fallback
    if fallback is None or mail.automatic is None or not _bounce(mail, raw):
        return False
    key = None
    if mail.message_id:
        key = hashlib.sha256(f"{address}\0{mail.message_id}".encode("utf-8", "surrogatepass")).hexdigest()
    if store.queue.recorded_before(key):
        log.info("premium.bounce_forwarded_before", reason=mail.automatic)
        return False
    record = Acceptance(
        mail_from=mail_from,
        client_ip=client_ip,
        account_id=account_id,
        user_id=None,
        header_message_id=mail.message_id,
        dedup_key=key,
        subject=mail.subject,
        text=mail.text,
        messages=[],
        validity_seconds=0,
        automatic=mail.automatic,
    )
    recorded = store.queue.insert_email(record)
    content = forwarded.bounce_forward(
        sender=cfg.mail.from_address,
        rcpt=fallback,
        domain=cfg.gateway.hostname,
        subject=mail.subject,
        reason=mail.automatic,
        mail_from=mail_from,
        client_ip=client_ip,
        numbers=about,
        raw=raw,
        lang=cfg.gateway.language,
        now=store.clock(),
    )
    store.outbox.enqueue_mail(
        "bounce-forward", "", fallback, content, premium_ref=premium_ref, email_ref=recorded.email_id
    )
    log.info("premium.bounce_forwarded", email=recorded.email_id, to=fallback, reason=mail.automatic)
    return True
