"""The answers kept past `[replies] mails_per_phone_per_hour` reach the staff member after all.

The limit is there against floods (a phone in a loop, an SMSC replaying), but a chatty customer
trips it too, and their last answers were kept in the gateway for good: staff have neither `smsgw mo
list` nor the panel to find them there. So once a phone has kept nothing for an hour, its kept
answers go out in one mail per conversation, to its user (or to the fallback address, as the answers
themselves would have gone; those no conversation took, sent to a number that is one account's
alone, to that account's inbound address, a mail per number), listing each answer's time (with its
date unless it is today), text and note. A phone still flooding keeps waiting, and a phone gets such
mails at most once an hour: one in a loop never turns into a flood of mail. A mail holds up to
`MAX_ANSWERS` answers and `MAX_CHARS` characters; the rest stay kept and follow in the next one, an
hour on. The `MAX_MAILS`th hour's mail is the last: it says how many more stay kept, listed by
`smsgw mo list`, and the phone's answers kept before it are not mailed (a phone with 20,000 would
have had 400 hourly mails). Nor are those kept longer ago than the reply window: such an answer
would be mailed as no answer now, and on the first start after the upgrade that brought these mails,
the answers of weeks before would all have gone at once, threaded to SMS long forgotten. They stay
`throttled`.

Everything runs inside one store write (`mail_due`): each answer moves from `throttled` to
`mailed` (or `fallback`) in the write that queues its mail, so a crash neither loses nor repeats it.
The write is bounded: `PHONES_PER_RUN` phones, the oldest `MAX_ANSWERS` + 1 answers of each, read
off the `mo_kept` index.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

import structlog

from gateway import forwarded, wording
from gateway.config import Config
from gateway.conversations import inbound, lateparts
from gateway.conversations.handlers import own_number
from gateway.conversations.inbound import Inbound
from gateway.conversations.keptrepo import Kept, own_note
from gateway.conversations.numbers import display, stored_phone, unnamed
from gateway.conversations.replymail import from_domain, mail_user, unthreaded
from gateway.conversations.repo import Conversation, ConversationsRepo
from gateway.conversations.rows import KEPT_MAIL_NOTE
from gateway.mailcopy import fallback_for, mail_settings
from gateway.store.db import Store
from gateway.store.forwardsteps import window_start
from gateway.store.mo import MoRepo
from gateway.store.outbox import Fallback, OutboxRepo, RefusedMail, on_carried, on_refused
from gateway.wording import Language

log = structlog.get_logger(__name__)

KIND = "reply-kept"  # to the conversation's user
FALLBACK_KIND = "reply-kept-fallback"  # to the fallback address
INBOUND_KIND = "reply-kept-inbound"  # to an account's inbound address
KINDS = (KIND, FALLBACK_KIND, INBOUND_KIND)
QUIET_SECONDS = 3600.0  # as the hourly limit counts
MAX_ANSWERS = 50
MAX_CHARS = 20_000
MAX_MAILS = 5  # hours in a row a phone's kept answers are mailed; the last says the rest stay kept
PHONES_PER_RUN = 20  # bounds one write (~10 ms a mail); the rest go in the next run, a minute on


def note_of(first: int) -> str:
    """The note each answer of one mail gets: the refusal of that mail finds them by it, `mo list`
    and the Answers page their mail (`rows.mail_ref`)."""
    return f"{KEPT_MAIL_NOTE}{first})"


def mail_due(store: Store, cfg: Config) -> int:
    """Inside the store's write: the mails of kept answers now due. Returns how many were queued."""
    r = ConversationsRepo(store.db, store.clock)
    now = store.clock()
    window_since = window_start(store.db.conn, now, cfg.replies.window_seconds)  # a step forward not counted
    r.kept_phones_forget(window_since)
    queued = 0
    quiet_since = window_start(store.db.conn, now, QUIET_SECONDS)  # as is the quiet hour
    for source in r.kept_due(quiet_since, window_since, KINDS, PHONES_PER_RUN):
        queued += _mail_phone(store, cfg, r, source, window_since)
    return queued


def _mail_phone(store: Store, cfg: Config, r: ConversationsRepo, phone: str, window_since: float) -> int:
    """One phone's kept answers, a mail per conversation; records how many hours they went in a row."""
    mails, closed_at = r.kept_phone(phone)
    since = max(window_since, closed_at or 0.0)
    fetched = r.kept_of(phone, since, MAX_ANSWERS + 1)
    cut = len(fetched) > MAX_ANSWERS
    last = mails + 1 >= MAX_MAILS
    owners: dict[str, tuple[str, Inbound] | None] = {}

    def owner(destination: str) -> tuple[str, Inbound] | None:
        if destination not in owners:
            owners[destination] = _inbound_of(r, cfg, phone, destination)
        return owners[destination]

    # A conversation's answers go together; those no conversation took, per account's own number
    # with an inbound address they were sent to, and the rest of them together, as they came.
    groups: dict[tuple[int | None, str | None], list[Kept]] = {}
    for k in fetched[:MAX_ANSWERS]:
        to = owner(k.destination) if k.conversation_id is None else None
        groups.setdefault((k.conversation_id, to[0] if to else None), []).append(k)
    queued, left = 0, cut
    for (conversation_id, number), kept in groups.items():
        # Only a cut read may have missed some of the conversation's: counted apart then.
        if not cut:
            total, newest = len(kept), kept[-1].received_at
        elif conversation_id is not None:
            total, newest = r.kept_span(phone, since, conversation_id)
        else:
            spans = [s for s in r.kept_unmatched_spans(phone, since) if _number(owner(s[0])) == number]
            total, newest = sum(s[1] for s in spans), max(s[2] for s in spans)
        to = owner(kept[0].destination) if number is not None else None
        sent, more = _mail_group(store, cfg, r, phone, conversation_id, kept, total, newest, last, to)
        queued, left = queued + sent, left or more
    if queued:
        now = store.clock()
        if not left:
            r.kept_phone_mailed(phone, 0, None, now)
        elif last:
            r.kept_phone_mailed(phone, 0, now, now)
            # Named by its first kept answer, never by number (the line outlives `smsgw phone
            # forget`): `smsgw mo list` tells that MO's phone.
            log.warning("mo.kept_closed", mo=fetched[0].id, mails=MAX_MAILS)
        else:
            r.kept_phone_mailed(phone, mails + 1, None, now)
    return queued


def _number(to: tuple[str, Inbound] | None) -> str | None:
    return to[0] if to else None


def _inbound_of(
    r: ConversationsRepo, cfg: Config, phone: str, destination: str
) -> tuple[str, Inbound] | None:
    """(the own number, its account) when an answer no conversation took was sent to a number that
    is one account's alone with an inbound address: the rule its own mail would have followed
    (`inbound.owner_of`, the phone's last conversation on the number checked), so that a flood's
    kept first contacts reach the company its first ones reached, as their mail promised."""
    caller = stored_phone(phone, cfg.gateway.default_region)
    number = own_number(r, cfg, caller, destination)
    last = r.last_on(caller, number) if caller else None
    to = inbound.owner_of(r.conn, cfg, number, last)
    return (number, to) if to is not None else None


def _answered(r: ConversationsRepo, cfg: Config, phone: str, mo_id: int) -> Conversation | None:
    """The conversation as the kept answer's own match gave it (`lateparts.as_answered`), which `gone`
    judges. Judged by the row, moved on by later mails, the predecessor's customer's kept answers
    reached the address's successor, and a user who wrote again had them under the newer SMS."""
    caller, mo = stored_phone(phone, cfg.gateway.default_region), r.find_mo(mo_id)
    if caller is None or mo is None:
        return None
    number = own_number(r, cfg, caller, mo.destination)
    return lateparts.as_answered(r, cfg, mo_id, lateparts.answer_at(mo), caller, number)


def _mail_group(
    store: Store,
    cfg: Config,
    r: ConversationsRepo,
    phone: str,
    conversation_id: int | None,
    kept: list[Kept],
    total: int,
    newest: float,
    last: bool,
    owner: tuple[str, Inbound] | None = None,
) -> tuple[int, bool]:
    """One conversation's kept answers: to its user, or where its answers go once the user is gone;
    answers no conversation took to an account's own number (`owner`): to its inbound address.
    Returns (mails queued, whether some of its kept answers are left)."""
    tz = ZoneInfo(cfg.gateway.timezone)
    shown = _shown(kept, MAX_ANSWERS, MAX_CHARS)
    ids = [k.id for k in kept[:shown]]
    note = note_of(ids[0])
    span = Span(total, newest, store.clock(), last)
    # As the first answer's match gave it: each later one answers the same SMS or a later one.
    conv = _answered(r, cfg, phone, ids[0]) if conversation_id is not None else None
    if conversation_id is None:
        why = f"no conversation took the answers of {phone} when they came"
    elif conv is None:
        why = "their conversation is no longer kept"
    else:
        why = r.gone(conv) or ""
    if owner is not None:
        return _mail_inbound(store, cfg, r, phone, kept, shown, span, owner)
    if conv is not None and not why:
        lang = cfg.gateway.language
        text = digest(phone, kept, shown, span, tz, lang)
        mail_user(store, cfg, conv, text, None, ids[0], kind=KIND)
        r.settle_kept(ids, "mailed", conv, note)
        log.info(
            "mo.kept_mailed",
            mo=ids[0],
            conversation=conv.id,
            to=conv.user_email,
            answers=len(ids),
            left=total - len(ids),
        )
        return 1, total > len(ids)
    if not cfg.replies.fallback_address:
        # As an answer to a user who is gone goes when no fallback address is set: recorded only.
        r.settle_kept([k.id for k in kept], "unmatched", None, f"{why}; kept past the hourly limit")
        said = unnamed(why, kept[0].id, phone)  # `why` may name the phone; the log names the MO
        log.warning("mo.kept_unmatched", mo=kept[0].id, answers=len(kept), reason=said)
        return 0, total > len(kept)
    to = Fallback(cfg.replies.fallback_address, mail_settings(cfg))
    text = digest(phone, kept, shown, span, ZoneInfo(to.settings.zone), to.settings.language)
    _mail_fallback(store.outbox, to, phone, kept[:shown], text, f"Not matched: {why}", conv)
    r.settle_kept(ids, "fallback", None, f"{note}: {why}")
    log.info("mo.kept_fallback", mo=ids[0], to=to.rcpt, answers=len(ids), left=total - len(ids))
    return 1, total > len(ids)


def _mail_inbound(
    store: Store,
    cfg: Config,
    r: ConversationsRepo,
    phone: str,
    kept: list[Kept],
    shown: int,
    span: Span,
    owner: tuple[str, Inbound],
) -> tuple[int, bool]:
    """Kept first contacts to an account's own number, in the form its inbound mails have
    (`replymail.unthreaded`): refused for good, the mail goes on to the fallback address."""
    number, to = owner
    ids = [k.id for k in kept[:shown]]
    caller = stored_phone(phone, cfg.gateway.default_region)
    answered = r.last_on(caller, number) if caller else None
    lang = cfg.gateway.language
    text = digest(phone, kept, shown, span, ZoneInfo(cfg.gateway.timezone), lang)
    why = inbound.told(f"no conversation took the answers of {phone} to {number} when they came")
    content = unthreaded(
        caller,
        from_domain(answered.domain if answered else None, cfg.gateway.domains),
        to.address,
        wording.KEPT_FALLBACK_SUBJECT(lang, phone=phone),
        text,
        f"Not matched: {why}",
        answered,
        zone=cfg.gateway.timezone,
        sender=cfg.mail.from_address,
        lang=lang,
        now=store.clock(),
    )
    fallback = fallback_for(cfg, cfg.replies.fallback_address, to.address)
    store.outbox.enqueue_mail(
        INBOUND_KIND, cfg.mail.from_address, to.address, content, mo_ref=ids[0], fallback=fallback
    )
    sent_to = f"sent to {to.address}, account {to.name}'s inbound address (account set --inbound-address)"
    r.settle_kept(ids, "fallback", None, f"{note_of(ids[0])}: {sent_to}: {why}")
    log.info("mo.kept_inbound", mo=ids[0], to=to.address, account=to.name, answers=len(ids))
    return 1, span.total > len(ids)


def _shown(kept: Sequence[Kept], most: int, chars: int) -> int:
    """How many of the oldest kept answers one mail holds: at least one, however long."""
    total = 0
    for n, k in enumerate(kept[:most]):
        total += len(k.text)
        if n and total > chars:
            return n
    return min(len(kept), most)


class Span(NamedTuple):
    """What a mail of kept answers says beyond those it lists."""

    total: int  # the conversation's kept answers, listed or not
    newest: float  # when the newest of them came
    now: float  # a time of today is shown without its date
    last: bool  # the phone's last such mail: those not listed stay kept, unmailed


def digest(phone: str, kept: Sequence[Kept], shown: int, span: Span, tz: ZoneInfo, lang: Language) -> str:
    """The mail's text: how many were kept and when, then each shown answer's time, text and note."""
    today = datetime.fromtimestamp(span.now, tz).date()

    def at(t: float) -> str:
        d = datetime.fromtimestamp(t, tz)
        return f"{d:%H:%M}" if d.date() == today else f"{d:%Y-%m-%d %H:%M}"

    first, newest = at(kept[0].received_at), at(span.newest)
    when = (
        wording.KEPT_AT(lang, first=first)
        if first == newest
        else wording.KEPT_BETWEEN(lang, first=first, last=newest)
    )
    head = wording.KEPT_HEAD["one" if span.total == 1 else "many"]
    lines = [head(lang, n=span.total, phone=display(phone), when=when), ""]
    for k in kept[:shown]:
        lines += [at(k.received_at), k.text]
        if own := own_note(k.note):
            lines.append(f"[{own}]")
        lines.append("")
    if left := span.total - shown:
        more = wording.KEPT_NO_MORE if span.last else wording.KEPT_MORE
        lines.append(more(lang, n=left, phone=phone))
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
    # A sender ID's or short code's answers come from the gateway's address, as each of its own
    # did (`replymail.unthreaded`): "8080" from +8080@ had a Reply sent as an SMS to no phone.
    caller = stored_phone(phone, "ZZ")  # a stored phone is E.164 with its "+": read alike anywhere
    content = forwarded.sms_reply(
        phone=caller or "",
        phone_display=display(caller) if caller else "SMS",
        domain=(answered.domain if answered else "") or to.settings.domain,
        rcpt=to.rcpt,
        subject=wording.KEPT_FALLBACK_SUBJECT(to.settings.language, phone=phone),
        text=text,
        quoted=answered.text if answered else None,
        quoted_at=datetime.fromtimestamp(answered.last_mt_at, zone) if answered else None,
        quoted_by=answered.user_email if answered else None,
        in_reply_to=None,
        note=note,
        gateway_address=to.settings.sender,
        lang=to.settings.language,
        contact=answered.name if answered else None,
        now=outbox.clock(),
    )
    outbox.enqueue_mail(FALLBACK_KIND, to.settings.sender, to.rcpt, content, mo_ref=kept[0].id)


def kept_refused(outbox: OutboxRepo, mail: RefusedMail) -> None:
    """Inside the write that records it: the relay refused a mail of kept answers for good. As with
    a single answer (`replymail.answer_refused`), a copy goes to the fallback address, if any, and
    each answer it carried says what became of it: `fallback`, or `failed`."""
    r = ConversationsRepo(outbox.db, outbox.clock)
    found = _carried(r, mail.mo_ref)
    if found is None:  # all deleted by the retention purge since: the log line is all there is
        log.warning("mo.kept_mail_refused", mo=mail.mo_ref, kind=mail.kind, to=mail.rcpt, error=mail.error)
        return
    phone, kept = found
    mos = MoRepo(outbox.db, outbox.clock)
    to = mail.fallback if mail.kind in (KIND, INBOUND_KIND) else None
    if to is not None and kept:
        conv = r.answered_in(kept[0].id, of_its_account=True)  # settled with it, checked when mailed
        span = Span(len(kept), kept[-1].received_at, outbox.clock(), False)
        text = digest(phone, kept, len(kept), span, ZoneInfo(to.settings.zone), to.settings.language)
        note = f"Not delivered to {mail.rcpt}: {mail.said}. Sent to the fallback address instead"
        _mail_fallback(outbox, to, phone, kept, text, note, conv)
        for k in kept:
            mos.answer_refused(k.id, "fallback", f"{mail.said}; sent to {to.rcpt}")
    else:
        nowhere = (
            "; no other address to send it to ([replies] fallback_address)"
            if mail.kind in (KIND, INBOUND_KIND)
            else ""
        )
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


def kept_carried(outbox: OutboxRepo, first: int) -> list[int]:
    """The answers a mail of kept answers carried, named by its first (`mo_ref`): those whose note
    starts with the mail's (`note_of`), as its refusal finds them. A mail refused and sent on
    `smsgw outbox retry` then tells each of them it was mailed after all, not the first alone."""
    found = _carried(ConversationsRepo(outbox.db, outbox.clock), first)
    return [k.id for k in found[1]] if found is not None else []


def _carried(r: ConversationsRepo, first: int) -> tuple[str, list[Kept]] | None:
    """(the phone, the answers still kept) of the mail whose first answer is `first`: by that
    answer's phone, or, once the purge deleted it (the oldest), by the mail's note alone. The
    digest's first answer falling to the purge left the others `failed` after a retry sent it."""
    mo = r.find_mo(first)
    if mo is None:
        return r.kept_mailed_without(first, note_of(first))
    return mo.source, r.kept_mailed(mo.source, note_of(mo.id))


on_refused(KINDS, kept_refused)
on_carried(KINDS, kept_carried)
