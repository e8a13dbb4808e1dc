"""The answers kept past `[replies] mails_per_phone_per_hour` reach the staff member after all.

The limit is there against floods (a phone in a loop, an SMSC replaying), but a chatty customer
trips it too, and their last answers were kept in the gateway for good: staff have neither
`smsgw mo list` nor the panel to find them there. So once a phone has kept nothing for an hour,
its kept answers go out in one mail per conversation, to its user (or to the fallback address, as
the answers themselves would have gone), listing each answer's time and text. A phone still
flooding keeps waiting, and a phone gets such mail at most once an hour: one in a loop never
turns into a flood of mail. A mail holds up to `MAX_ANSWERS` answers and `MAX_CHARS` characters;
the rest stay kept and follow in the next one, an hour on.

Everything runs inside one store write (`mail_due`): each answer moves from `throttled` to
`mailed` (or `fallback`) in the write that queues its mail, so a crash neither loses nor repeats it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog

from gateway import forwarded
from gateway.config import Config
from gateway.conversations.numbers import display
from gateway.conversations.repo import Conversation, ConversationsRepo, Kept
from gateway.mailcopy import fallback_for, mail_settings
from gateway.store.db import Store
from gateway.store.mo import MoRepo
from gateway.store.outbox import Fallback, OutboxRepo, RefusedMail, on_refused

log = structlog.get_logger(__name__)

KIND = "reply-kept"  # to the conversation's user
FALLBACK_KIND = "reply-kept-fallback"  # to the fallback address
QUIET_SECONDS = 3600.0  # as the hourly limit counts
MAX_ANSWERS = 50
MAX_CHARS = 20_000
PHONES_PER_RUN = 100  # bounds one write; the rest go in the next run


def note_of(first: int) -> str:
    """The note each answer of one mail gets: the refusal of that mail finds them by it."""
    return f"kept past the hourly limit, then mailed with the other kept answers (the mail of MO {first})"


def mail_due(store: Store, cfg: Config) -> int:
    """Inside the store's write: the mails of kept answers now due. Returns how many were queued."""
    r = ConversationsRepo(store.db, store.clock)
    quiet_since = store.clock() - QUIET_SECONDS
    queued = 0
    for source in r.kept_due(quiet_since, (KIND, FALLBACK_KIND), PHONES_PER_RUN):
        groups: dict[int | None, list[Kept]] = {}
        for k in r.kept_of(source):
            groups.setdefault(k.conversation_id, []).append(k)
        for conversation_id, kept in groups.items():
            queued += _mail_group(store, cfg, r, source, conversation_id, kept)
    return queued


def _mail_group(
    store: Store, cfg: Config, r: ConversationsRepo, phone: str, conversation_id: int | None, kept: list[Kept]
) -> int:
    """One conversation's kept answers: to its user, or where its answers go once the user is gone."""
    tz = ZoneInfo(cfg.gateway.timezone)
    shown = _shown(kept, MAX_ANSWERS, MAX_CHARS)
    text = digest(phone, kept, shown, tz)
    ids = [k.id for k in kept[:shown]]
    note = note_of(ids[0])
    conv = r.conversation_of(ids[0]) if conversation_id is not None else None
    if conversation_id is None:
        why = f"no conversation took the answers of {phone} when they came"
    elif conv is None:
        why = "their conversation is no longer kept"
    else:
        why = r.gone(conv) or ""
    if conv is not None and not why:
        content = forwarded.sms_reply(
            phone=conv.phone,
            phone_display=display(conv.phone),
            domain=conv.domain or cfg.gateway.domains[0],
            rcpt=conv.user_email,
            subject=conv.subject,
            text=text,
            quoted=conv.text,
            quoted_at=datetime.fromtimestamp(conv.last_mt_at, tz),
            in_reply_to=conv.header_message_id,
            references=conv.refs,
            lang=cfg.gateway.language,
            contact=conv.name,
        )
        fallback = fallback_for(cfg, cfg.replies.fallback_address, conv.user_email)
        store.outbox.enqueue_mail(
            KIND, cfg.mail.from_address, conv.user_email, content, mo_ref=ids[0], fallback=fallback
        )
        r.settle_kept(ids, "mailed", conv.id, note)
        log.info(
            "mo.kept_mailed", phone=phone, to=conv.user_email, answers=len(ids), left=len(kept) - len(ids)
        )
        return 1
    if not cfg.replies.fallback_address:
        # As an answer to a user who is gone goes when no fallback address is set: recorded only.
        r.settle_kept([k.id for k in kept], "unmatched", None, f"{why}; kept past the hourly limit")
        log.warning("mo.kept_unmatched", phone=phone, answers=len(kept), reason=why)
        return 0
    to = Fallback(cfg.replies.fallback_address, mail_settings(cfg))
    _mail_fallback(store.outbox, to, phone, kept[:shown], text, f"Not matched: {why}", conv)
    r.settle_kept(ids, "fallback", None, f"{note}: {why}")
    log.info("mo.kept_fallback", phone=phone, to=to.rcpt, answers=len(ids), left=len(kept) - len(ids))
    return 1


def _shown(kept: Sequence[Kept], most: int, chars: int) -> int:
    """How many of the oldest kept answers one mail holds: at least one, however long."""
    total = 0
    for n, k in enumerate(kept[:most]):
        total += len(k.text)
        if n and total > chars:
            return n
    return min(len(kept), most)


def digest(phone: str, kept: Sequence[Kept], shown: int, tz: ZoneInfo) -> str:
    """The mail's text: how many were kept and when, then each shown answer's time and text."""
    first = datetime.fromtimestamp(kept[0].received_at, tz)
    last = datetime.fromtimestamp(kept[-1].received_at, tz)
    form = "%H:%M" if first.date() == last.date() else "%Y-%m-%d %H:%M"
    count = "1 answer" if len(kept) == 1 else f"{len(kept)} answers"
    lines = [
        f"{count} from {display(phone)} kept during a flood between {first:{form}} and {last:{form}}"
        " (more than the gateway mails from one phone in an hour):",
        "",
    ]
    for k in kept[:shown]:
        lines += [f"{datetime.fromtimestamp(k.received_at, tz):{form}}", k.text, ""]
    if left := len(kept) - shown:
        lines.append(
            f"… and {left} more: they follow in the next mail, an hour from now at the earliest"
            f" (your administrator lists them all: smsgw mo list --number {phone})"
        )
    return "\n".join(lines).rstrip("\n")


def _mail_fallback(
    outbox: OutboxRepo,
    to: Fallback,
    phone: str,
    kept: Sequence[Kept],
    text: str,
    note: str,
    answered: Conversation | None,
) -> None:
    """The mail of kept answers no user gets, to the fallback address (nowhere else if refused)."""
    zone = ZoneInfo(to.settings.zone)
    content = forwarded.sms_reply(
        phone=phone,
        phone_display=display(phone),
        domain=(answered.domain if answered else "") or to.settings.domain,
        rcpt=to.rcpt,
        subject=f"SMS from {phone} kept during a flood",
        text=text,
        quoted=answered.text if answered else None,
        quoted_at=datetime.fromtimestamp(answered.last_mt_at, zone) if answered else None,
        quoted_by=answered.user_email if answered else None,
        in_reply_to=None,
        note=note,
        gateway_address=to.settings.sender,
        lang=to.settings.language,
        contact=answered.name if answered else None,
    )
    outbox.enqueue_mail(FALLBACK_KIND, to.settings.sender, to.rcpt, content, mo_ref=kept[0].id)


def kept_refused(outbox: OutboxRepo, mail: RefusedMail) -> None:
    """Inside the write that records it: the relay refused a mail of kept answers for good. As with
    a single answer (`replymail.answer_refused`), a copy goes to the fallback address, if any, and
    each answer it carried says what became of it: `fallback`, or `failed`."""
    r = ConversationsRepo(outbox.db, outbox.clock)
    first = r.find_mo(mail.mo_ref)
    if first is None:  # deleted by the retention purge since: the log line is all there is
        log.warning("mo.kept_mail_refused", mo=mail.mo_ref, kind=mail.kind, to=mail.rcpt, error=mail.error)
        return
    kept = r.kept_mailed(first.source, note_of(first.id))
    mos = MoRepo(outbox.db, outbox.clock)
    to = mail.fallback if mail.kind == KIND else None
    if to is not None and kept:
        conv = r.conversation_of(first.id)
        text = digest(first.source, kept, len(kept), ZoneInfo(to.settings.zone))
        note = f"Not delivered to {mail.rcpt}: {mail.said}. Sent to the fallback address instead"
        _mail_fallback(outbox, to, first.source, kept, text, note, conv)
        for k in kept:
            mos.answer_refused(k.id, "fallback", f"{mail.said}; sent to {to.rcpt}")
    else:
        nowhere = "; no other address to send it to ([replies] fallback_address)" if mail.kind == KIND else ""
        for k in kept:
            mos.answer_refused(k.id, "failed", f"{mail.said}{nowhere}")
    log.warning(
        "mo.kept_mail_refused",
        mo=mail.mo_ref,
        kind=mail.kind,
        to=mail.rcpt,
        answers=len(kept),
        sent_to=to.rcpt if to is not None and kept else None,
        error=mail.error,
    )


on_refused((KIND, FALLBACK_KIND), kept_refused)
