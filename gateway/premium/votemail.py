"""A premium SMS as mail: to its client, answerable, or to the fallback address, and on to the
fallback when the relay refuses the client's address for good.

Apart from the routing (gateway/premium/handlers.py) because these run in writes of their own too:
the outbox worker's, when it records a refusal (`_vote_refused`, registered here with the outbox),
and they write the mail by the settings it was queued under, not by the config.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog

from gateway import forwarded, reassembly
from gateway.config import Config
from gateway.conversations.numbers import display
from gateway.mailcopy import fallback_for, mail_settings
from gateway.premium import corrections, passwords
from gateway.premium.repo import PremiumMo, PremiumRepo
from gateway.smtp.addressing import kind_words, number_kind
from gateway.store.db import Store
from gateway.store.mo import MoRepo
from gateway.store.outbox import Fallback, MailSettings, OutboxRepo, RefusedMail, on_refused

log = structlog.get_logger(__name__)

# Why the client's mail of a vote from a kind of number the gateway does not serve offers no answer.
UNSERVED = "{} is a {} number, which this gateway sends no SMS to: this SMS cannot be answered"

# The note of the parts of an SMS that brought its password late (`handlers._late_password`).
LATE_PASSWORD = "its first part, with the password, came late; the rest went to the fallback address first"


def to_client(store: Store, cfg: Config, pmo: PremiumMo, email: str, *, note: str | None = None) -> None:
    """The premium SMS to its client, answerable; should the relay refuse the client's address for
    good, a copy goes to the premium fallback address (`_vote_refused`). `note`: what its words did
    (an opt-out or opt-in, `premium.handlers.on_whole_mo`)."""
    fallback = fallback_for(cfg, cfg.premium_fallback, email)
    # A phone of a kind the gateway sends no SMS to (a premium-rate or satellite number, perhaps
    # spoofed) has every answer refused (`answers.answer`): its mail offers no answer address, and
    # says why, rather than one whose answers (an out-of-office's too) each come back refused.
    kind = number_kind(pmo.phone) if pmo.phone.startswith("+") else None
    answerable = kind is None or kind in cfg.gateway.number_types
    if kind is not None and not answerable:
        why = UNSERVED.format(display(pmo.phone), kind_words(kind))
        note = why if note is None else f"{note}. {why}"
    s = mail_settings(cfg)
    mail_to(store.outbox, s, pmo, email, answer=True, fallback=fallback, told=note, answerable=answerable)


def mail_to(
    outbox: OutboxRepo,
    s: MailSettings,
    pmo: PremiumMo,
    rcpt: str,
    *,
    answer: bool,
    fallback: Fallback | None = None,
    told: str | None = None,
    answerable: bool = True,
) -> None:
    """By the settings given, not the config: a refused mail's copy is written by the outbox worker,
    with the settings its mail was queued under. `told`: a note for an answerable mail (a fallback
    mail's is in its `pmo.note`). `answerable`: False for the client's mail of a vote no answer can
    be sent to (`to_client`), which offers no answer address."""
    tz = ZoneInfo(s.zone)
    # The late parts of an SMS are answered as the SMS: through its first mail's address.
    first = PremiumRepo(outbox.db, outbox.clock).first_of(pmo.id)
    token = pmo.token or (first.token if first is not None else None)
    answer_address = (
        passwords.address("premium", token, s.domain) if answer and answerable and token else None
    )
    note = told if answer else f"Not forwarded to a client: {pmo.note}"
    if (
        first is not None
        and pmo.note
        and pmo.note.startswith(LATE_PASSWORD)
        and not reassembly.has_gap(pmo.text)
    ):
        # The whole SMS, its parts mailed to the fallback then among them: no gap stands for them.
        when = datetime.fromtimestamp(first.received_at, tz)
        note = f"The whole SMS of {when:%Y-%m-%d %H:%M}: {LATE_PASSWORD}"
    elif first is not None:
        sent = MoRepo(outbox.db, outbox.clock).first_part_at(first.mo_id) or first.received_at
        late = reassembly.late_note(sent, tz)
        note = late if note is None else f"{note}. {late}"
    content = forwarded.premium_mo(
        sender=s.sender,
        rcpt=rcpt,
        domain=s.host,
        answer_address=answer_address,
        password=pmo.password or "",
        number=pmo.number,
        phone=display(pmo.phone) if pmo.phone.startswith("+") else pmo.phone,
        text=pmo.text,
        received_at=datetime.fromtimestamp(pmo.received_at, tz),
        note=note,
        now=outbox.clock(),
        # The footer says how long an answer may be: as the answer will be sent (`answers.answer`).
        transliterated=answer_address is not None
        and pmo.account_id is not None
        and PremiumRepo(outbox.db, outbox.clock).transliterates(pmo.account_id),
        lang=s.language,
    )
    # The answer address is also the envelope sender: auto-responders answer the Return-Path.
    outbox.enqueue_mail(
        "premium" if answer else "premium-fallback",
        answer_address or s.sender,
        rcpt,
        content,
        mo_ref=pmo.mo_id,
        fallback=fallback,
    )


def _vote_refused(outbox: OutboxRepo, mail: RefusedMail) -> None:
    """Inside the write that records it: the relay refused a premium SMS's mail for good (the
    client's address is gone), or it ran out of attempts. The phone paid for it: it goes to the
    premium fallback address, as an SMS with an unknown password does, its money record unchanged,
    and both its records say what became of it (the money record's note as billed, once its month
    was: see below). A copy to the fallback goes nowhere else."""
    r = PremiumRepo(outbox.db, outbox.clock)
    pmo = r.by_mo(mail.mo_ref)
    if pmo is None:
        return
    said, to = mail.said, mail.fallback
    state, note = "fallback" if to else "failed", f"{pmo.note}; {said}" if pmo.note else said
    # A month billed already keeps the SMS as billed, its reason too (a `failed` line gives the row's
    # note): the change is booked now when its billing status changes (`corrections.restate`), and
    # the refusal is said in table mo and on the correction's line.
    zone = ZoneInfo(to.settings.zone) if to is not None else None
    billed = corrections.restate(outbox.db, outbox.clock, zone, pmo, state, said)
    r.settle_mo(pmo.id, state, None if billed else note)
    if to is not None:
        mail_to(outbox, to.settings, replace(r.by_id(pmo.id), note=note), to.rcpt, answer=False)
        said += f"; sent to {to.rcpt}"
    elif mail.kind == "premium":
        said += "; no other address to send it to ([premium] fallback_address)"
    MoRepo(outbox.db, outbox.clock).answer_refused(mail.mo_ref, "fallback" if to else "failed", said)
    log.warning(
        "premium.mail_refused",
        mo=mail.mo_ref,
        kind=mail.kind,
        to=mail.rcpt,
        sent_to=to.rcpt if to else None,
        error=mail.error,
    )


on_refused(("premium", "premium-fallback"), _vote_refused)
