"""The two-way handlers: an accepted MT opens a conversation, a whole MO is mailed to its user.

Both run inside the caller's transaction. `on_accept` runs in the acceptance write, so the
originating number chosen from the pool is the one the SMS is queued with; `on_whole_mo` runs in
the write that stores the (whole, reassembled) MO, so the reply mail is queued atomically with it:
a crash neither loses the answer nor mails it twice. The parts of a long answer that came after it
was mailed without them follow it (`lateparts`). A mail with an answer that the relay refuses for
good goes on to `[replies] fallback_address`, in the write that records the refusal
(`gateway.conversations.replymail`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from billing_reports.repo import BillingRepo
from gateway import forwarded, handoffs
from gateway.config import Config
from gateway.configbase import is_number_sender
from gateway.conversations import inbound, lateparts, waiting
from gateway.conversations.keptrepo import kept_note
from gateway.conversations.lastsms import last_sms
from gateway.conversations.numbers import digit_forms, display, normalise, own_form, stored_phone, unnamed
from gateway.conversations.pool import e164_pool as _e164_pool
from gateway.conversations.pool import pool_set as _pool_set
from gateway.conversations.reached import Sent, answer_of
from gateway.conversations.replymail import mail_fallback, mail_user
from gateway.conversations.repo import Conversation, ConversationsRepo
from gateway.mailcopy import mail_settings
from gateway.smtp.subjects import sms_from
from gateway.store.db import Store
from gateway.store.outbox import Fallback
from gateway.store.records import Acceptance
from gateway.wording import Phrase

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Opening:
    """What an accepted email tells the conversations; built by the SMTP side before its write."""

    user_email: str
    account_id: int | None
    domains: dict[str, str]  # E.164 number → the gateway domain it was addressed at
    pool: tuple[str, ...]  # in E.164 where the number is one, as answers name it
    window_seconds: float
    region: str  # for our own numbers written without their country code
    # E.164 number → what the mail's To or Cc called it (`forwarded.contact_name`): its answers' From
    names: dict[str, str] = field(default_factory=dict)


def opening(
    cfg: Config,
    *,
    user_email: str,
    account_id: int | None,
    sender: str,
    domains: dict[str, str],
    names: dict[str, str] | None = None,
) -> Opening | None:
    """None when nobody can answer: an alphanumeric sender (R-1.11) or no user to mail answers to."""
    if not user_email or not is_number_sender(sender):
        return None
    region = cfg.gateway.default_region
    pool = _e164_pool(tuple(cfg.replies.pool), region)
    return Opening(user_email, account_id, domains, pool, cfg.replies.window_seconds, region, names or {})


def unanswerable(cfg: Config, accounts: Sequence[tuple[str, str | None]] | None = None) -> list[str]:
    """R-1.11 for `check-config` and the start: each sender a phone cannot answer.

    `accounts`: (who, sender) of the accounts to say it of; the config's `[[account]]` blocks when
    None. check-config gives the stored ones too (`gateway.cli.sendernotes`): an account made with
    `account add` or the panel sends from its sender as much as one a block made.
    """
    if accounts is None:
        accounts = [(f"account {a.name}", a.sender) for a in cfg.account]
    senders = [("[gateway] default_sender", cfg.gateway.default_sender)]
    senders += [(f"{who}: sender", sender) for who, sender in accounts if sender]
    return [
        f"{where} {sender!r} is alphanumeric: phones cannot answer it, replies are impossible"
        for where, sender in senders
        if not is_number_sender(sender)
    ]


def repo(store: Store) -> ConversationsRepo:
    return ConversationsRepo(store.db, store.clock)


def on_accept(store: Store, o: Opening, acceptance: Acceptance, reached: set[str] | None = None) -> None:
    """Inside the acceptance write: each SMS's originating number, and the conversation it continues.

    `reached`: the recipients an earlier copy reached (`queue.reached_before`), if the caller has them.
    """
    r = repo(store)
    now = store.clock()
    # A recipient this mail reached before is skipped by the queue (dedup): its conversation is
    # neither moved nor given another number by the copy.
    if reached is None:
        reached = store.queue.reached_before(acceptance.dedup_key)
    for m in acceptance.messages:
        if m.recipient in reached:
            continue
        if o.pool:
            choice = r.choose_number(
                m.recipient, o.user_email, o.pool, now, o.window_seconds, o.account_id, region=o.region
            )
            if choice.displaced is not None:
                # The operator's cue, once per SMS that takes a held number: no mail (a busy phone
                # would make one per SMS); `conversation list` and the panel say "shared" meanwhile.
                same = choice.displaced.account_id == o.account_id
                answers = "to whichever colleague texted it last" if same else "to the fallback address"
                log.warning(
                    "conversation.displaced",
                    phone=m.recipient,
                    number=choice.number,
                    user=o.user_email,
                    displaced_user=choice.displaced.user_email,
                    same_account=same,
                    pool=len(o.pool),
                    answers=f"{answers} while both conversations live",
                    hint=f"the reply pool ran out for {m.recipient}: add numbers to [replies] pool",
                )
            m.source = choice.number
        subject = acceptance.subject or None
        if subject and (topic := forwarded.cut_topic(subject)) is not None:
            # A Reply to our reply mail, "RE: Re: <topic cut> (SMS from …)": taken as the subject,
            # the next answer's Thread-Topic was the cut one, and Outlook started a new thread.
            stored = r.subject_of(m.recipient, o.user_email)
            if stored and forwarded.reply_topic(stored).startswith(topic):
                subject = stored
        r.record_mt(
            phone=m.recipient,
            # An answer names our number in E.164 (`on_whole_mo` reads it so): a sender configured
            # as 48501000000 or 501000000 must be kept the same way, or no answer would match.
            number=normalise(m.source, o.region),
            user_email=o.user_email,
            account_id=o.account_id,
            domain=o.domains.get(m.recipient, ""),
            header_message_id=acceptance.header_message_id,
            subject=subject,
            text=m.text,
            refs=acceptance.thread_refs,
            name=o.names.get(m.recipient),
            want_id=False,
        )


def on_whole_mo(
    store: Store,
    cfg: Config,
    mo_id: int,
    *,
    optout: bool = False,
    listed: bool = False,
    note: str | None = None,
    earlier: int | None,
    awaited: int | None = None,
) -> str:
    """Inside the MO's write: mail a whole MO to its conversation's user, or to the fallback.

    Returns the state recorded on the MO: mailed, fallback, unmatched, optout, duplicate or throttled
    (`fallback` also for one mailed to the account's inbound address, its note naming it). `earlier`
    is what `redelivery_of(mo_id)` said: the caller asks it once an MO, for every handler. `listed`:
    the opt-out word (`optout`) came from a phone on the opt-out list already, and changed nothing.

    `waiting` when an SMS to the phone from its number waits for the SMSC's answer to its submit: it
    is handled again once that is answered (`waiting.resume_due`, with that SMS as `awaited`).
    """
    r = repo(store)
    mo = r.mo(mo_id)
    region = cfg.gateway.default_region
    phone = stored_phone(mo.source, region)
    if earlier is not None:
        r.settle_mo(mo_id, "duplicate", None, f"the SMSC delivered the same SMS again (MO {earlier})")
        log.info("mo.duplicate", mo=mo_id, earlier=earlier)
        return "duplicate"
    if optout and listed:
        # Only the STOP that lists the phone tells its user something new, and is mailed past the
        # hourly limit; one STOP after another (45 in 7.5 minutes: 45 mails, the limit 30) is held
        # to it, counted, kept and mailed as any answer.
        said = f"{display(phone or mo.source)} is on the opt-out list already: SMS to it are refused"
        optout, note = False, ". ".join(n for n in (said, note) if n)
    number = own_number(r, cfg, phone, mo.destination)
    late = lateparts.follow(store, cfg, mo, phone, number, note)
    if isinstance(late, str):
        return late
    # A long answer is stored when joined: by the timeout, or after a restart, long after its parts
    # came. It is matched as of when its first part came, or one sent in the window's last minutes
    # would miss its user, and one a colleague texted the phone after would go to the colleague.
    # (Its row keeps the join time, which billing's month boundaries rely on.) The late rest of one
    # no user got is matched as its first parts were, as of when they came: matched as of its own
    # time, it went to whoever texted the phone since (the address's new holder).
    at = late.at if isinstance(late, lateparts.Unfollowed) else lateparts.answer_at(mo)
    if late is not None:  # which SMS it completes, above it
        note = ". ".join(n for n in (late.note, note) if n)
    if isinstance(late, lateparts.Orphan):  # its first parts' user is gone: as an answer to theirs
        conv, gone = late.answered, late.why
    else:
        found: Conversation | Sent | None = None
        if phone:
            window = cfg.replies.window_seconds
            wait = waiting.wait_seconds(cfg) if late is None else None
            handed = handoffs.of(str(store.db.path))
            found = answer_of(
                r.conn, phone, number, at, window, region, wait=wait, awaited=awaited, handed=handed
            )
        if isinstance(found, Sent):  # the SMS it may answer waits for its submit's answer
            return waiting.keep(store, mo_id, found.message_id, note)
        conv = found
        gone = r.gone(conv) if conv is not None else None
    shared = False
    # Before whether its user is gone: a shared number's answer is either company's, whoever holds
    # the newest conversation's address now. Checked only once that user was gone, the answer was
    # billed to, and listed in the panel of, the company whose user was removed or moved. A late rest
    # of an answer its user got (`Orphan`) is the rest of an SMS that was theirs: it goes as they did.
    orphan = isinstance(late, lateparts.Orphan)
    if conv is not None and not orphan and number in _pool_set(tuple(cfg.replies.pool), region):
        if others := r.sharing(conv, at, cfg.replies.window_seconds, region):
            shared = True
            # The pool ran out and this number was given to a second company: the answer may be to
            # either. The operator's fallback address sees it rather than the wrong company.
            gone = (
                f"{number} was given to {conv.user_email} while {', '.join(others)} of another account"
                f" had a conversation with {display(phone or '')} on it (the reply pool ran out):"
                " which one it answers cannot be told"
            )
    # The SMS the fallback's copy quotes: that of the user who is gone; none of a shared number's two.
    answered = conv if gone is not None and not shared else None
    # Its account is billed for the answer wherever it is mailed (R-5.2: the answer is traffic on that
    # account's number, to its SMS); a shared number's answer is either's and billed to neither.
    billed = answered.account_id if answered is not None else None
    if gone is not None:
        conv = None
    limit = cfg.replies.mails_per_phone_per_hour
    flood_note = None
    # Counted whenever the answer may be mailed: to its user, the fallback, or an inbound address
    # (without a fallback, a phone looping to a company's own number mailed the company each time).
    mailable = conv is not None or cfg.replies.fallback_address or inbound.any_address(r.conn)
    # A sender that is no phone (a sender ID, an operator's short code) is held to it too, by its
    # address as it came, letters of either case one sender: its A2P flood or service loop filled
    # the fallback's mailbox, the outbox and the MO table. A premium SMS never reaches this limit
    # (`premium.on_whole_mo` took it first): one the public paid for is never kept back.
    sender = phone or mo.source
    # A late rest is held as its first parts were (`lateparts.Limited`): kept with them, or counted
    # with them (its first) and mailed past the limit.
    kept_with, counted = (late.limited.kept_with, late.limited.counted) if late else (None, True)
    if limit and mailable and (counted or kept_with is not None):
        mailed, kept, stops = r.mailed_from(sender, store.clock() - 3600, any_case=phone is None)
        # Only the phone's first STOP of the hour goes past the limit: one after a START lists it anew,
        # but tells its user nothing the first did not (STOP, START, ... gave 70 mails in 13 minutes).
        first_stop = optout and not stops
        if not first_stop and (kept_with is not None or mailed >= limit):
            reason = f"more than {limit} answers from {sender} within an hour: kept here, not mailed"
            if kept_with is not None:
                reason = f"the late part of MO {kept_with}, kept with it"
            if optout:  # listed all the same: the kept answers' mail says so
                note = _opted_out(sender, note)
            # The caller's note (START, a possible opt-out, parts that never came) goes with it.
            r.settle_mo(mo_id, "throttled", conv, kept_note(reason, note))
            _bill(store, mo_id, billed)
            # No number in the line (it outlives `smsgw phone forget`): `smsgw mo list` tells the MO's
            # phone, `smsgw mo list --number` the rest of what it sent.
            log.warning("mo.throttled", mo=mo_id, limit=limit, kept=kept + 1)
            return "throttled"
        if not first_stop and mailed == limit - 1:  # the last one mailed this hour says what comes next
            flood_note = (
                f"{display(sender)} sent {limit} SMS within an hour: more within the hour are kept in the"
                " gateway, and come together in one mail once an hour passes without more"
            )
    if conv is not None:
        state = "optout" if optout else "mailed"
        # `note`: the caller's (an opt-in word, a sentence that may be an opt-out, parts that never came)
        note = ". ".join(n for n in (flood_note, note) if n) or None
        if optout:  # with the caller's note (the SMS to the phone the STOP ended, parts that never came)
            note = _opted_out(conv.phone, note)
        mail_user(store, cfg, conv, mo.text, note, mo_id)
        r.settle_mo(mo_id, state, conv, note)
        log.info("mo.mailed", mo=mo_id, conversation=conv.id, to=conv.user_email, optout=optout)
        return state
    if phone is None:
        reason = "the sender is not a phone number (alphanumeric or malformed): it cannot be answered"
    elif gone is not None:
        reason = gone
    else:
        # Whose it most likely is, for the operator to forward: the row is kept past the window.
        if (answered := r.last_on(phone, number)) is not None:
            reason = last_sms(r, cfg, answered, at)
        else:
            reason = f"no SMS was sent to {phone} from {number} within the reply window"
            reason += f" ({cfg.replies.window_days:g} days unless the account sets its own)"
    if optout:  # acted on already; the staff member's next mail to the phone gets 550
        reason += f". {display(phone or mo.source)} is now opted out: further SMS to it are refused"
    # To a number that is one account's alone: to that account's inbound address, if it has one
    # (a number of several accounts, or one whose last SMS to the phone was another's: as below).
    to = None if shared else inbound.owner_of(r.conn, cfg, number, answered)
    if to is not None:
        said = inbound.told(reason)
        why = f"sent to {to.address}, account {to.name}'s inbound address (account set --inbound-address)"
        inbound.mail_inbound(
            store,
            cfg,
            to,
            mo_id,
            phone=phone,
            subject=f"{sms_from(mo.source)} to {number} ({_WHY['no conversation'](cfg.gateway.language)})",
            text=mo.text,
            note=". ".join(n for n in (f"Not matched: {said}", flood_note, note) if n),
            answered=answered,
        )
        state = "optout" if optout else "fallback"
        r.settle_mo(mo_id, state, None, f"{why}: {reason}")
        _bill(store, mo_id, billed)
        log.info("mo.inbound", mo=mo_id, to=to.address, account=to.name, optout=optout)
        return state
    fallback = cfg.replies.fallback_address
    if optout and not fallback:
        r.settle_mo(mo_id, "optout", None, reason)
        _bill(store, mo_id, billed)
        return "optout"
    if fallback:
        why = "number shared by two accounts" if shared else "no conversation"
        mail_fallback(
            store.outbox,
            Fallback(fallback, mail_settings(cfg)),
            mo_id,
            phone=phone,
            domain=cfg.gateway.domains[0],
            # Our number as configured; "SMS from … to …" is read back (`smtp.subjects`), the rest is words.
            subject=f"{sms_from(mo.source)} to {number} ({_WHY[why](cfg.gateway.language)})",
            text=mo.text,
            note=". ".join(n for n in (f"Not matched: {reason}", flood_note, note) if n),
            answered=answered,
        )
        state = "optout" if optout else "fallback"
        r.settle_mo(mo_id, state, None, reason)
        _bill(store, mo_id, billed)
        log.info("mo.fallback", mo=mo_id, to=fallback, optout=optout)
        return state
    r.settle_mo(mo_id, "unmatched", None, reason)
    _bill(store, mo_id, billed)
    log.warning("mo.unmatched", mo=mo_id, reason=unnamed(reason, mo_id, phone, mo.source))
    return "unmatched"


def _opted_out(phone: str, note: str | None) -> str:
    """An answer's note that it was an opt-out word, before `note`: its own mail's and a kept one's
    say the same."""
    said = f"{display(phone)} answered with an opt-out word: further SMS to it are refused"
    return ". ".join(n for n in (said, note) if n)


# Why a fallback or inbound mail came, in its subject's brackets.
_WHY = {
    "no conversation": Phrase("no conversation", "nie pasuje do żadnej rozmowy"),
    "number shared by two accounts": Phrase("number shared by two accounts", "numer wspólny dwóch kont"),
}


def _bill(store: Store, mo_id: int, account_id: int | None) -> None:
    """An answer no conversation took, billed to the account whose SMS it answers, if one is known."""
    if account_id is not None:
        BillingRepo(store.db, store.clock).bill_answer(mo_id, account_id)


def own_number(r: ConversationsRepo, cfg: Config, phone: str | None, destination: str) -> str:
    """Our number an answer was sent to, as stored: a number the plan knows in E.164, else as
    `own_number_as_stored` finds it among ours."""
    number = normalise(destination, cfg.gateway.default_region)
    if stored_phone(number, cfg.gateway.default_region) is None:
        number = own_number_as_stored(r, cfg, phone, number)
    return number


def own_number_as_stored(r: ConversationsRepo, cfg: Config, phone: str | None, destination: str) -> str:
    """The MO's destination as the conversations store the own number it is, or as it came if none.

    A number the plan does not know (the shipped +48100200300) is kept as the SMSC wrote it,
    "48100200300" (SMPP TON 0 or 2), "0048100200300" (CIMD2) or "100200300" (national), while its
    conversations hold it as configured: without this, every answer to it went to the fallback. The
    numbers this phone had SMS from come first (only those can match); then the default sender, the
    accounts' senders and the pool, so that an answer no conversation takes names it as configured.
    """
    region = cfg.gateway.default_region
    used = r.numbers_with(phone) if phone is not None else []
    found = own_form(destination, used, region) or r.own_sender(
        destination, cfg.gateway.default_sender, region
    )
    if found is None:
        pool = _pool_set(tuple(cfg.replies.pool), region)
        found = next((f"+{f}" for f in digit_forms(destination, region) if f"+{f}" in pool), None)
    return found or destination
