"""DATA as plain data: a parsed mail and its sender turned into the rows, limits and notices that
`gateway.smtp.accept` writes in one transaction (R-1.3 to R-1.9).

No I/O here besides reading the store (an answer to a conversation); the relay handler decides
per command and hands the parsed envelope over.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog

from acl.quiet import release_time
from gateway import accountrules, conversations, forwarded, notify, wording
from gateway.config import Config
from gateway.conversations.answers import NO_NEW_TEXT, no_new_text, our_hosts, replies_to_mail
from gateway.smtp import (
    alerts,
    automail,
    bouncenotices,
    mailexpiry,
    mailidentity,
    mailloop,
    mimefast,
    recipients,
    replies,
)
from gateway.smtp.accept import Limits, Notice, limits_for
from gateway.smtp.charsets import decode_header
from gateway.smtp.identical import identical_notice, identical_refusal, identical_today
from gateway.smtp.intake import IntakeRefused, MailText, intake_options, read_mail
from gateway.smtp.rcptnames import contact_names
from gateway.store.accountrecord import Account
from gateway.store.db import Store
from gateway.store.records import Acceptance, NewMessage, NewPart
from smsc.encoding import EmptyText, Plan, plan

if TYPE_CHECKING:
    from gateway.smtp.gate import Sender

log = structlog.get_logger(__name__)


def compose(
    cfg: Config,
    store: Store,
    sender: Sender,
    numbers: list[str],
    raw: bytes,
    *,
    now: datetime,
    client_ip: str | None,
    domains: dict[str, str],
    mailboxes: Sequence[str] = (),
    addresses: Mapping[str, str] | None = None,
    relay_client: str | None = None,
    silent: Collection[str] = (),
    relay_ips: Collection[str] = (),
) -> tuple[Acceptance, Limits | None, list[Notice], conversations.Opening | None] | str:
    """DATA as plain data for `accept`: the rows, the limits that apply, the notices to send;
    or the SMTP reply that refuses the mail.

    `mailboxes` are the gateway's own addresses a bounce was sent to (R-1.7): relay.py takes
    them from the empty envelope sender alone, so such a mail is always recorded, never sent.
    `addresses`: each number's RCPT address as given (the first, when two named one number),
    kept with its SMS for its bounce's Final-Recipient (RFC 3464). `relay_client`: the address the
    relay port took the mail from on its network alone, which the write checks again (`Limits`).
    `silent`: the numbers whose RCPT said NOTIFY=NEVER (RFC 3461), of which the sender hears nothing.
    `relay_ips`: the `[mail] relay` host's addresses, a bounce from which may return an answer mail.

    A notice that tells of SMS not sent or held (identical text, past the mail's expiry, quiet hours)
    goes from the null sender, as a bounce does (RFC 5321 4.5.5, RFC 3461 6.2): its own bounce
    would come back to the gateway, and a sender's auto-responder could answer it."""
    account = sender.account
    gw = cfg.gateway
    opts = intake_options(  # in the field order of IntakeOptions
        gw.subject_max,
        gw.subject_separator,
        accountrules.end_marker(cfg, account),
        account.cut_from if account else (),
        tuple(gw.charset_fallbacks),
        cfg.mail.from_address,
        gw.timezone,
    )
    try:
        # The parse refuses a MIME structure past `mimebound`'s bounds before it parses anything
        # (its cost grows with the parts: a poison mail held a worker's loop > 30 s); named here.
        mail = read_mail(raw, opts, empty_sender=not sender.mail_from)
    except IntakeRefused as exc:
        if exc.reply in mimefast.SHAPE_REFUSALS:
            log.warning(
                "intake.mime_refused", ip=client_ip, sender=sender.mail_from, size=len(raw), reply=exc.reply
            )
        if exc.reply == replies.ONLY_QUOTE and _a_reply(raw, cfg):
            return NO_NEW_TEXT  # its subject was ours or a prefix alone: "no subject" would puzzle
        return exc.reply
    if mail.automatic and account is not None:
        mail = _alert(cfg, account, raw, mail)
    # a retry is the same mail as read, before an answer's subject is dropped: the first copy
    # opens the conversation that makes the retry an answer, and must not make it a new mail.
    dedup_key = mailidentity.dedup_key(mail.message_id, sender.mail_from, mail.text, raw, now.timestamp())
    if account is not None and no_new_text(mail, our_hosts(cfg)):
        return NO_NEW_TEXT
    as_read = mail.text
    mail, answered = conversations.as_answer(
        store, cfg, user_email=sender.mail_from, numbers=numbers, mail=mail
    )
    if mail.message_id is None:
        mail = mail.model_copy(update={"message_id": mailidentity.own_message_id(cfg)})
    common: dict[str, Any] = dict(
        mail_from=sender.mail_from,
        envelope=sender.envelope,
        client_ip=client_ip,
        account_id=account.id if account else None,
        user_id=sender.user.id if sender.user else None,
        header_message_id=mail.message_id,
        thread_refs=forwarded.thread_refs(mail.references),
        subject=mail.subject,
        text=mail.text,
        removed="; ".join(mail.removed) or None,
        validity_seconds=accountrules.validity_seconds(cfg, account),
    )
    if mail.automatic or account is None:
        reason = mail.automatic or automail.EMPTY_SENDER
        automatic = Acceptance(
            **common,
            dedup_key=dedup_key,
            messages=[],
            automatic=reason,
            numbers=" ".join(numbers) or None,
        )
        if reason == automail.OOF_GUESSED and sender.user is not None:
            # Only a guess: if a person wrote it, a 250 alone would leave them believing it was sent.
            # So its writer is told, never the account's notify address, which did not write it.
            notices_to = sender.mail_from
            told = notify.notice(
                sender=cfg.mail.from_address,
                rcpt=notices_to,
                domain=cfg.gateway.hostname,
                subject=wording.NOT_SENT_OOF_SUBJECT(cfg.gateway.language, subject=mail.subject),
                content=wording.NOT_SENT_OOF_TEXT(
                    cfg.gateway.language, subject=mail.subject, numbers=", ".join(numbers)
                ),
                in_reply_to=mail.message_id,
                now=now.timestamp(),
            )
            return automatic, None, [Notice("not-sent", "", notices_to, told)], None
        told = bouncenotices.notices(
            cfg,
            store,
            raw,
            reason,
            sender=sender,
            subject=mail.subject,
            numbers=[*numbers, *mailboxes],
            client_ip=client_ip,
            relay_ips=relay_ips,
            now=now.timestamp(),
        )
        return automatic, None, told, None
    planned = partial(
        plan,
        mode="separate" if account.split_mode == "separate" else "concatenated",
        max_parts=cfg.gateway.parts_cap,
        transliterate=account.transliterate,
        latin1=cfg.dc0_latin1,
    )
    # Each number's text: the answer alone where the mail answers its conversation, else the mail's
    # (a number added to a Reply gets the topic; the conversation's phone only what was typed).
    texts = {n: mail.body if n in answered else mail.text for n in numbers}
    try:
        plans = {t: planned(t) for t in dict.fromkeys([mail.text, *texts.values()])}
    except EmptyText:
        return replies.EMPTY_TEXT
    # Each number's SMS as planned, as the rounds before are kept: `’` and `–` are `'` and `-` there.
    sms = {n: plans[texts[n]].text for n in numbers}
    # A mailbox and a phone's auto-reply app answering each other: only the looping phones left out.
    no_receipts = mailloop.unasked(cfg)
    if looped := mailloop.left_out(store, sender.mail_from, sms, dedup_key, now.timestamp(), no_receipts):
        if not (numbers := [n for n in numbers if n not in looped]):
            return mailloop.worded(*next(iter(looped.items())))
        plans = {t: plans[t] for t in dict.fromkeys([mail.text, *(texts[n] for n in numbers)])}
    p = plans[mail.text]
    for q in plans.values():
        if q.truncated and account.overflow == "reject":
            length, fits = len(q.text) + len(q.dropped), len(q.text)
            return replies.TOO_LONG.format(length=length, parts=cfg.gateway.parts_cap, fits=fits)
    # As the conversation's first SMS went (with its subject), or as its phone gets it (without).
    other = as_read if as_read != mail.text else mail.body if len(plans) > 1 else None
    also = (plans.get(other) or planned(other)).text if other is not None else None
    # Every notice about the mail's SMS goes where its bounces go (`events.Notifier`): the account's
    # notify address, when it named one. A monitoring system's sender (alertmanager@…) reads none.
    notices_to = account.notify_address or sender.mail_from
    # NOTIFY speaks for the envelope sender alone, as for the SMS's bounces (`gateway.notifier._mails`):
    # a notify address hears what the account's rule says. A notice of several numbers names the rest.
    quiet = set(silent) if notices_to.casefold() == sender.mail_from.casefold() else set()
    held_until = None
    if mail.bulk or account.bulk:
        held_until = release_time(now, account.quiet_start, account.quiet_end)
    blocked, retry = identical_today(store, cfg, numbers, p.text, also, dedup_key, now)
    # first: a retry of a mail taken already (its 250 lost, sent again after its expiry) is
    # answered as any retry; "no SMS was sent" would bounce a mail whose SMS the phone has.
    stale = mailexpiry.expired(mail.expiry_date, now, held_until)
    not_sent: list[tuple[str, bytes]] = []
    if stale is not None:
        reached = [n for n in numbers if n in store.queue.reached_before(dedup_key)]
        if not reached:
            return stale
        if late := [n for n in numbers if n not in reached]:
            # Numbers the first copy did not name get nothing of a mail past its expiry: only the
            # retry's numbers are left (no SMS, the retry's 250), and the sender is told of the others.
            if told_of := [n for n in late if n not in quiet]:
                told = mailexpiry.expired_notice(cfg, notices_to, mail, reached, told_of, now)
                not_sent.append(("not-sent", told))
            numbers, blocked = reached, []
    if blocked:
        # R-2.4's operator rule leaves out only those numbers: a group mail to three, one of which
        # had its identical SMS today, was refused whole. Decided before the rows and notices, so
        # that the confirmation names only the numbers sent; the sender is told of the others (not
        # again when the same transaction is retried). With no number left the mail is refused.
        numbers = [n for n in numbers if n not in blocked]
        if not numbers:
            return identical_refusal(cfg, blocked[0])
        if not retry and (told_of := [n for n in blocked if n not in quiet]):
            not_sent.append(
                (
                    "not-sent",
                    identical_notice(
                        cfg, notices_to, mail.subject, numbers, told_of, mail.message_id, now=now.timestamp()
                    ),
                )
            )
    not_sent += mailloop.told(cfg, notices_to, mail, numbers, looped, quiet, now.timestamp())
    source = account.sender or cfg.gateway.default_sender
    valid_until = mailexpiry.valid_until(cfg, account, mail, now, held_until)
    if valid_until is not None:
        start = held_until or now
        common["validity_seconds"] = accountrules.validity_seconds(
            cfg, account, expires=valid_until, start=start
        )
        common["valid_until"] = valid_until.timestamp()
    chosen = {n: plans[texts[n]] for n in numbers}
    parts = {t: _parts(q) for t, q in plans.items()}  # one list per text, shared by its numbers
    messages = [
        NewMessage(
            number,
            source,
            chosen[number].text,
            int(chosen[number].coding),
            parts[texts[number]],
            concatenated=chosen[number].concatenated,
            not_before=held_until.timestamp() if held_until else None,
            rcpt=recipients.as_given((addresses or {}).get(number)),
            bulk=mail.bulk,
        )
        for number in numbers
    ]
    subject = mail.subject or mail.text[:40]
    # Each notice answers the mail it is about: the mail client files it with that mail.
    stamp: dict[str, Any] = dict(
        sender=cfg.mail.from_address,
        rcpt=notices_to,
        domain=cfg.gateway.hostname,
        in_reply_to=mail.message_id,
        lang=cfg.gateway.language,
        now=now.timestamp(),
    )

    # Notices to the sender, queued in the same transaction as the mail they describe.
    notices: list[tuple[str, bytes]] = not_sent
    hears = [n for n in numbers if n not in quiet]  # the numbers the notices below may name
    if held_until is not None and hears:
        # A validity that ends before the hours do: the SMS expires unsent, and the notice says so.
        held = notify.held_notice(
            **stamp, recipients=hears, until=held_until, subject=subject, expires=valid_until
        )
        notices.append(("held", held))
    # Each number's own SMS: with an answer in a conversation the mail has two texts, and
    # the sender is told of each, not of the mail's whole text for every number.
    if account.confirm and hears:
        confirmation = notify.confirmation(
            **stamp,
            subject=subject,
            sent={n: _shape(chosen[n]) for n in hears},
            removed=list(mail.removed),
            transliterated=any(chosen[n].transliterated for n in hears),
            plain_punctuation=any(chosen[n].plain_punctuation for n in hears),
            valid_until=valid_until.astimezone(now.tzinfo) if valid_until is not None else None,
        )
        notices.append(("confirmation", confirmation))
    cuts = {n: notify.Cut(len(q.parts), q.dropped) for n in hears if (q := chosen[n]).truncated}
    if cuts:
        truncated = notify.truncation_notice(**stamp, cuts=cuts, subject=subject)
        notices.append(("truncated", truncated))
    limits = limits_for(
        cfg,
        account=account,
        user=sender.user,
        numbers=numbers,
        text=p.text,
        parts=len(p.parts),
        now=now,
        # As the first mail of a conversation went: with its subject (an answer's is dropped).
        text_with_subject=also,
        message_id=mail.message_id,
        relay_client=relay_client,
    )
    if len(plans) > 1:  # the conversation's phone gets fewer parts than the others
        per_number = tuple(len(m.parts) for m in messages)  # in the order of `numbers`
        limits = dataclasses.replace(limits, needed=sum(per_number), per_number=per_number)
    opening = conversations.opening(
        cfg,
        user_email=sender.mail_from,
        account_id=account.id,
        sender=source,
        domains=domains,
        names=contact_names(mail.named, numbers, addresses or {}, cfg.gateway.default_region),
    )
    return (
        Acceptance(**common, dedup_key=dedup_key, messages=messages),
        limits,
        [
            Notice(
                kind,
                "" if kind in _OF_DELIVERY else cfg.mail.from_address,
                notices_to,
                content,
                on_duplicate=stale is not None and kind == "not-sent",
            )
            for kind, content in notices
        ],
        opening,
    )


# The notices that report SMS not sent or held, from the null sender; a confirmation or a truncation
# notice reports what was sent, from the gateway's address as before.
_OF_DELIVERY = frozenset({"not-sent", "held"})


def _alert(cfg: Config, account: Account, raw: bytes, mail: MailText) -> MailText:
    """A machine mail whose only sign is a monitoring system's (`alerts.alert_only`): sent as any
    mail for an account that asked (`--auto-generated send`); else recorded, and its reason names
    that setting, which the sender reads in the `250` (cron's alerts were recorded unsent, unread)."""
    msg = mimefast.parse(raw.replace(b"\r\n", b"\n").lstrip(b" \t\r\n"))
    own = cfg.mail.from_address
    if not alerts.alert_only(
        msg,
        mail.automatic,
        subject=mail.subject,
        own_address=own,
        own_domains=cfg.gateway.domains,
        hostname=cfg.gateway.hostname,
    ):
        if account.auto_generated == "send" and mail.automatic in alerts.ALERT_REASONS:
            # The first sign is one the account takes: the `250` says why this mail was not sent.
            why = "not an alert: it answers a mail, or is a responder's or the gateway's own"
            return mail.model_copy(update={"automatic": f"{mail.automatic}; {why}"})
        return mail
    if account.auto_generated == "send":
        return mail.model_copy(update={"automatic": None})
    return mail.model_copy(update={"automatic": f"{mail.automatic}; {alerts.alert_hint(account.name)}"})


THREAD_ID = re.compile(r"<([^<>\s]{1,250})>")


def _a_reply(raw: bytes, cfg: Config) -> bool:
    """Whether a mail refused for holding only quoted text is a Reply to one of our mails (or has a
    Reply's subject), read from its headers alone: only the refusal's wording depends on it."""
    msg = mimefast.parse(raw.replace(b"\r\n", b"\n").lstrip(b" \t\r\n"))
    thread = THREAD_ID.findall(f"{msg.get('in-reply-to', '')} {msg.get('references', '')}")
    subject = decode_header(str(msg.get("subject", "")), tuple(cfg.gateway.charset_fallbacks) or ("utf-8",))
    return replies_to_mail(thread, subject, our_hosts(cfg))


def _shape(p: Plan) -> notify.Shape:
    return notify.Shape(
        len(p.parts),
        "GSM 03.38" if p.coding == 0 else "UCS-2",
        p.reason,
        f"text past {len(p.parts)} parts" if p.truncated else None,
    )


def _parts(p: Plan) -> list[NewPart]:
    return [NewPart(i + 1, int(p.coding), part.payload, b"", part.text) for i, part in enumerate(p.parts)]
