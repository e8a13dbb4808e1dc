"""Premium MOs (R-4.4) and services' addresses (R-4.3): routing by password, mail in the MO's write.

`on_whole_mo` runs inside the write that stores a whole MO: the money row, the mail to the client
(or the fallback) and the MO's state are committed together, so a crash before the SMSC hears
`OK` leaves one row and one mail, and the SMSC's redelivery, however late, is recognised as a
duplicate (`gateway.store.mo.MoRepo.redelivery_of`); the same vote sent again by the phone, after
the first one's acknowledgement reached the SMSC, is a new SMS and charged again. Service
changes (add, new address, removal) run in the admin's transaction and queue their mail there.

An MO is charged for the parts of it that came (`MoRepo.parts`): a long SMS joined by the timeout
without some has not cost the phone those. Parts that come after that are the same SMS: they
follow its first mail to the same client and answer address, charged for themselves (`_late_parts`);
when they bring the first part, with the password the rest lacked, the SMS is that client's after
all (`_late_password`).

A mail to a client that the relay refuses for good (the client's address is gone) goes on to the
premium fallback address, in the write that records the refusal (`gateway.premium.votemail`): the
phone paid.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from gateway import notify, reassembly
from gateway.config import Config
from gateway.conversations.numbers import display, stored_phone
from gateway.mailcopy import mail_settings
from gateway.premium import corrections, moves, passwords
from gateway.premium.repo import PremiumMo, PremiumRepo, Service
from gateway.premium.senders import premium_number
from gateway.premium.votemail import LATE_PASSWORD, mail_to, to_client
from gateway.store.db import Store

log = structlog.get_logger(__name__)

_KEPT = re.compile(r"kept until (\S+) confirms")


def repo(store: Store) -> PremiumRepo:
    return PremiumRepo(store.db, store.clock)


def password_of(r: PremiumRepo, text: str, number: str) -> tuple[str, str] | None:
    """(password, message) an MO's text starts with, else None.

    A password written as it is (`KP123 ...`) counts whatever service it names, as ever. Written
    with a gap (`KP 123`, `KP-123`, `kp. 123`), it counts only when it names a live service on the
    number: the phone paid, and sent to the fallback the vote never reached its client, nor its
    commission; a gap that names no service is text like any other."""
    found = passwords.split(text)
    if found is not None:
        return found
    loose = passwords.spaced(text)
    if loose is None:
        return None
    service = r.active_service(loose[0])
    if service is None or (service.number_list and number not in service.number_list):
        return None
    return loose


def on_whole_mo(
    store: Store,
    cfg: Config,
    mo_id: int,
    *,
    optout: bool = False,
    listed: bool = False,
    note: str | None = None,
    earlier: int | None,
) -> str | None:
    """Inside the MO's write: route an MO to a premium number; None when it is not premium traffic.

    Returns what became of it: mailed, awaiting (the address is not confirmed yet), fallback,
    unmatched (no fallback address) or duplicate (the SMSC delivered it again). `optout` (the phone
    was put on the opt-out list by it) and `note`, the caller's (an opt-in word acted on, the SMS
    the STOP ended, parts that never came), go in the mail and on the MO, as the conversations'
    mail has them: a STOP or START to a premium number changed the gateway-wide list silently.
    `listed`: the phone was on the list already, and the opt-out word changed nothing: a repeated STOP
    was noted "on the opt-out list now", as if this one had put it there.
    """
    r = repo(store)
    source, destination, text, received_at, parts = r.mo_row(mo_id)
    number = premium_number(cfg, destination)
    if number is None:
        return None
    phone = stored_phone(source, cfg.gateway.default_region)
    if optout:
        said = f"{display(phone or source)} answered with an opt-out word: it is on the opt-out list"
        said += " already" if listed else " now"
        note = ". ".join(n for n in (f"{said}, further SMS to it are refused", note) if n)
    if earlier is not None:  # `redelivery_of(mo_id)`, asked once an MO by the caller
        note = f"the SMSC delivered the same premium SMS again (MO {earlier}): not charged twice"
        r.mark_mo(mo_id, "duplicate", note)
        log.info("premium.duplicate", mo=mo_id, number=number, earlier=earlier)
        return "duplicate"
    followed = store.mo.followed(mo_id)
    first = r.by_mo(followed.id) if followed is not None else None
    if first is not None:
        first = corrections.owner(r, first)  # a billed SMS claimed since is its new client's
    if first is not None:
        return _late_parts(store, cfg, mo_id, first, number, text, received_at, parts)
    tariff = cfg.premium.tariffs[number]
    found = password_of(r, text, number)
    password, message = found if found else (None, text.strip())
    service = r.active_service(password) if password else None
    reason = None
    if phone is None:
        reason = "the sender is not a phone number (alphanumeric or malformed): it cannot be answered"
    elif password is None:
        reason = "the text does not start with a premium password (KP and three letters or digits)"
    elif service is None:
        reason = f"no premium service has the password {password}"
    elif service.number_list and number not in service.number_list:
        reason = (
            f"the service {password} does not run on {number} (it runs on {', '.join(service.number_list)})"
        )
    if reason is not None:
        service = None
        reason = ". ".join((reason, note)) if note else reason
    row = dict(
        mo_id=mo_id,
        number=number,
        phone=phone or source,
        service_id=service.id if service else None,
        account_id=service.account_id if service else None,
        password=password,
        parts=parts,
        price=tariff.price * parts,
        commission=tariff.commission * parts,
        text=message if service else text,
        received_at=received_at,
    )
    if service is None:
        assert reason is not None
        return _to_fallback(store, cfg, row, reason)
    token = passwords.new_token()
    if service.verified_at is None:
        kept = f"kept until {service.email} confirms"
        r.record_mo(**row, state="awaiting", note=kept, token=token)
        r.mark_mo(mo_id, "premium", ". ".join(n for n in (f"{password}: {kept}", note) if n))
        log.info("premium.awaiting", mo=mo_id, service=password, number=number)
        return "awaiting"
    # Also while the client's account is suspended: the phone paid for this SMS, and holding it would
    # keep from the client what it earns them. Only the client's answers are refused meanwhile
    # (`answers.answer`), since their free SMS would wait unsent for the resume.
    pmo_id = r.record_mo(**row, state="mailed", token=token, forwarded_at=store.clock())
    to_client(store, cfg, r.by_id(pmo_id), service.email, note=note)
    r.mark_mo(mo_id, "premium", ". ".join(n for n in (f"{password}: mailed to {service.email}", note) if n))
    log.info("premium.mailed", mo=mo_id, service=password, number=number, parts=parts)
    return "mailed"


def _to_fallback(store: Store, cfg: Config, row: dict[str, Any], reason: str) -> str:
    """No client for it: recorded (and charged, the phone paid) and mailed to the operator's fallback."""
    r = repo(store)
    fallback = cfg.premium_fallback
    state = "fallback" if fallback else "unmatched"
    pmo_id = r.record_mo(**row, state=state, note=reason)
    if fallback:
        mail_to(store.outbox, mail_settings(cfg), r.by_id(pmo_id), fallback, answer=False)
    r.mark_mo(row["mo_id"], "premium", f"{state}: {reason}")
    log.info("premium.unknown", mo=row["mo_id"], number=row["number"], parts=row["parts"], state=state)
    return state


def _late_parts(
    store: Store,
    cfg: Config,
    mo_id: int,
    first: PremiumMo,
    number: str,
    text: str,
    received_at: float,
    parts: int,
) -> str:
    """The parts of a long premium SMS that came after its first ones were mailed without them.

    They are the same SMS: they go where the first ones went (the same service and answer address,
    or the fallback), charged only for themselves. Read for a password, their text would start with
    a gap marker and send them to the fallback, charged as a whole SMS again.
    """
    r = repo(store)
    tariff = cfg.premium.tariffs[number]
    row: dict[str, Any] = dict(
        mo_id=mo_id,
        number=number,
        phone=first.phone,
        service_id=first.service_id,
        account_id=first.account_id,
        password=first.password,
        parts=parts,
        price=tariff.price * parts,
        commission=tariff.commission * parts,
        text=text,
        received_at=received_at,
    )
    late = f"the late part of premium MO {first.id}"
    if first.service_id is None and (claimed := _late_password(store, cfg, mo_id, first, row)) is not None:
        return claimed
    service = r.service(first.service_id) if first.service_id is not None else None
    if service is None or service.removed_at is not None:
        # No client gets it, so no client's account is charged for it (as for an unknown password).
        row.update(service_id=None, account_id=None)
        if service is None:
            return _to_fallback(store, cfg, row, f"{late}, which no client took: {first.note}")
        return _to_fallback(store, cfg, row, f"{late}, whose service {service.password} was removed since")
    # Its first parts were mailed before the service moved to another account: to that account's
    # client they go, whose answer address they carry, and whose bill they are in (`moves`). First
    # parts still kept are not: the late ones are kept with them until the address confirms.
    moved = moves.moved_away(first, service)
    if service.verified_at is None and not moved:
        note = f"{late}, kept until {service.email} confirms"
        r.record_mo(**row, state="awaiting", note=note)
        r.mark_mo(mo_id, "premium", f"{service.password}: {note}")
        log.info("premium.awaiting", mo=mo_id, service=service.password, number=number, late=True)
        return "awaiting"
    rcpt = moves.first_address(r, first, service) if moved else service.email
    pmo_id = r.record_mo(**row, state="mailed", note=late, forwarded_at=store.clock())
    to_client(store, cfg, r.by_id(pmo_id), rcpt)
    r.mark_mo(mo_id, "premium", f"{service.password}: {late}, mailed to {rcpt}")
    log.info("premium.mailed", mo=mo_id, service=service.password, number=number, parts=parts, late=True)
    return "mailed"


def _late_password(
    store: Store, cfg: Config, mo_id: int, first: PremiumMo, row: dict[str, Any]
) -> str | None:
    """The late parts of an SMS that went to the fallback for want of a password, when they bring
    its first part and that names a service: the SMS is that client's (R-4.4). The client gets the
    whole SMS as far as it came, the late parts' row is theirs, and the first one's money moves to
    them (booked as a correction when its month was billed already); the fallback keeps the copy it
    had. None when they bring no such password."""
    r = repo(store)
    late = store.mo.held(mo_id)
    found = password_of(r, row["text"], row["number"]) if late is not None and 1 in late[1] else None
    service = r.active_service(found[0]) if found else None
    if found is None or service is None or (service.number_list and row["number"] not in service.number_list):
        return None
    assert late is not None
    earlier = store.mo.held(first.mo_id)
    whole = reassembly.merge([(first.text, earlier[1]), (row["text"], late[1])], late[0]) if earlier else None
    password, message = (password_of(r, whole, row["number"]) if whole else None) or found
    row.update(service_id=service.id, account_id=service.account_id, password=password, text=message)
    why = f"its first part, with the password, came late (MO {mo_id})"
    if (
        corrections.move(
            store, cfg, first, service, "awaiting" if service.verified_at is None else "mailed", why
        )
        is None
    ):
        r.claim_mo(first.id, service, why)
        # The client's now, as its text is (the late parts' mail carries it whole): billed delivered
        # to the client, or pending while its address is unconfirmed, not `failed` as the fallback's.
        r.settle_mo(first.id, "awaiting" if service.verified_at is None else "mailed")
    r.mark_mo(first.mo_id, "premium", f"{password}: to the fallback address, then with its late first part")
    note = LATE_PASSWORD
    if service.verified_at is None:
        note += f"; kept until {service.email} confirms"
        r.record_mo(**row, state="awaiting", note=note, token=passwords.new_token())
        r.mark_mo(mo_id, "premium", f"{password}: {note}")
        log.info("premium.awaiting", mo=mo_id, service=password, number=row["number"], late_password=True)
        return "awaiting"
    token = passwords.new_token()
    pmo_id = r.record_mo(**row, state="mailed", note=note, token=token, forwarded_at=store.clock())
    to_client(store, cfg, r.by_id(pmo_id), service.email)
    r.mark_mo(mo_id, "premium", f"{password}: {note}; mailed to {service.email}")
    log.info("premium.mailed", mo=mo_id, service=password, number=row["number"], late_password=True)
    return "mailed"


def forward_awaiting(store: Store, cfg: Config, service: Service) -> int:
    """Once the address confirmed: the kept MOs, in the order they came, each mailed once. One of a
    month billed already stays billed `pending` there; its delivery is a correction booked now."""
    r = repo(store)
    waiting = r.awaiting(service.id)
    zone = ZoneInfo(cfg.gateway.timezone)
    for pmo in waiting:
        # Kept for the account the service had, it is the one's it has now, should it have moved
        # since (`moves`): the first before its restatement, which then finds the move's status.
        rcpt, moved, told = moves.kept_to(store, cfg, pmo, service)
        whole = _whole_in_late(r, pmo)
        # Billed `pending` already (its month ended before the address confirmed): the month written
        # again lists it so, and its delivery is booked now, as a correction (`corrections.restate`).
        why = f"mailed once {service.email} confirmed"
        corrections.restate(store.db, store.clock, zone, pmo, "mailed", why)
        # "kept until X confirms" said so on after it had: in the billing file, and with a refusal
        # of this mail added to it ("kept until X confirms; the relay refused ...").
        note = _KEPT.sub(r"kept until \1 confirmed", pmo.note or "")
        r.settle_mo(pmo.id, "mailed", "; ".join(n for n in (note, told) if n) or None)
        if not whole:
            to_client(store, cfg, r.by_id(pmo.id), rcpt)
        said = f"{pmo.password}: mailed to {rcpt} after confirmation"
        said += " with its late first part" if whole else ""
        r.mark_mo(pmo.mo_id, "premium", f"{said}; {moved}" if moved else said)
    if waiting:
        log.info("premium.forwarded", service=service.password, mos=len(waiting))
    return len(waiting)


def _whole_in_late(r: PremiumRepo, pmo: PremiumMo) -> bool:
    """Whether a kept MO's text goes in the mail of its late parts: parts that went to the fallback
    for want of a password its late first part brought (`_late_password`), whose rest carries them
    whole. Mailed on their own as well, the client got them twice, the second time without an
    answer address, and the fallback a second copy."""
    row = r.conn.execute(
        "SELECT 1 FROM premium_mo WHERE follows = ? AND substr(note, 1, ?) = ? LIMIT 1",
        (pmo.id, len(LATE_PASSWORD), LATE_PASSWORD),
    ).fetchone()
    return row is not None


def release_awaiting(store: Store, cfg: Config, service: Service, why: str) -> int:
    """A service removed before its address confirmed: its kept MOs go to the fallback, never lost,
    and are no client's (`PremiumRepo.release_mo`), as the late parts of a removed service's SMS.

    A kept MO of a month already billed stays billed as the client's; the release is booked now
    (`corrections`). Their rows in table mo say so too: `smsgw mo list` would otherwise go on
    showing them kept until an address confirms that no longer can."""
    r = repo(store)
    waiting = r.awaiting(service.id)
    fallback = cfg.premium_fallback
    went = f"sent to the fallback address {fallback}" if fallback else "no fallback address to send it to"
    for pmo in waiting:
        state = "fallback" if fallback else "unmatched"
        if corrections.move(store, cfg, pmo, None, state, why) is None:
            r.release_mo(pmo.id, state, why)
        else:
            # Billed as the client's: the row stays theirs, the correction moved it. Its state is
            # what became of it (`mo list`, `phone show`); its billed month goes on listing it under
            # the status it was billed with, which the correction's reversal names
            # (`billing_reports.monthly._premium`), and the new one is on the correction's line.
            r.settle_mo(pmo.id, state, why)
        if fallback and not _whole_in_late(r, pmo):
            mail_to(store.outbox, mail_settings(cfg), r.by_id(pmo.id), fallback, answer=False)
        r.mark_mo(pmo.mo_id, "premium", f"{pmo.password}: {why}; {went}")
    if waiting:
        log.info("premium.released", service=service.password, mos=len(waiting), to=fallback)
    return len(waiting)


def unclaim_erased(store: Store, cfg: Config, phone: str, why: str) -> int:
    """The phone's votes kept until their client's address confirms, ended by `smsgw phone forget`:
    never mailed, so no client took them and no client's account is owed their commission, as for
    a service removed before it confirmed (`release_awaiting`); the phone's price stays. Left the
    client's, the billing file paid the client commission on votes it never got. A month billed
    already gets a correction. Run in the erasure's transaction, before it ends them."""
    r = repo(store)
    waiting = r.awaiting_from(phone)
    for pmo in waiting:
        if corrections.move(store, cfg, pmo, None, "erased", why) is None:
            r.unclaim_mo(pmo.id)
    return len(waiting)


def ask_verification(store: Store, cfg: Config, service: Service, account_name: str) -> str:
    """Mail the service's address a confirmation naming a fresh single-use token; returns the address."""
    token = passwords.new_token()
    lifetime = cfg.premium.verification_days * 86400
    repo(store).new_verification(token, service.id, service.email, lifetime)
    confirm = passwords.address("confirm", token, cfg.gateway.domains[0])
    tz = ZoneInfo(cfg.gateway.timezone)
    content = notify.premium_verification(
        sender=cfg.mail.from_address,
        rcpt=service.email,
        domain=cfg.gateway.hostname,
        confirm_address=confirm,
        password=service.password,
        account=account_name,
        numbers=service.number_list or list(cfg.premium.tariffs),
        expires_at=datetime.fromtimestamp(store.clock() + lifetime, tz),
        lang=cfg.gateway.language,
        now=store.clock(),
    )
    store.outbox.enqueue_mail("premium-verify", cfg.mail.from_address, service.email, content)
    log.info("premium.verification_sent", service=service.password, to=service.email)
    return confirm
