"""Mail to postmaster and to the gateway's own notice address, as RFC 5321 4.5.1 wants them taken.

Postmaster (domainless or at a gateway domain) must reach a person: such a mail is recorded like
any other and handed to `[mail] admin_address` through the outbox, as a bounce is handed to the
fallback address (`forwarded.bounce_forward`, sent from <> with its loop mark). The notice address
(`[mail] from_address`) takes bounces only (relay.py); a person answering a notice is told where
to write instead of that the address is "not a valid phone number".

MAIL lets anyone through once premium numbers are configured (their answers come from anywhere),
so postmaster takes mail from the whole internet: what it forwards is capped per hour (`busy` at
RCPT, `refused_in_write` in the write that records it), and each forward attaches at most
`forwarded.BOUNCE_ATTACH_MAX` of the original, its headers beyond.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import Envelope, Session

from acl.logins import client_key
from gateway import forwarded
from gateway.config import Config
from gateway.smtp import hourcap, replies
from gateway.smtp.accept import Notice
from gateway.smtp.charsets import decode_header
from gateway.smtp.intake import IntakeOptions, IntakeRefused, read_mail
from gateway.smtp.mimefast import shape_refusal
from gateway.smtp.received import received
from gateway.store.db import Store

if TYPE_CHECKING:
    from gateway.smtp.gate import Sender
from gateway.store.records import Acceptance

# Recorded as the mail's reason for not becoming SMS, and said in the `250`.
FORWARDED = "mail to postmaster, forwarded to the gateway's administrator"
# A mail that is itself one of our forwards (the admin address an alias back to postmaster here).
LOOPED = "mail to postmaster that is a forward of the gateway's own; recorded, not forwarded again"
# The recipients a postmaster mail may not share its transaction with (each is handled its own way).
_OTHERS = frozenset({"premium", "numbers", "info", "mailboxes"})

# Mails to postmaster forwarded in the last hour, at most: from senders outside the ACL in all (what
# reaches the admin's mailbox from strangers, however many addresses they send from), and from one
# client (one flooding server does not use up the others' share). A client is an IPv4 address or an
# IPv6 /64: a host is given a /64 at least, and would have had a cap for each address it took from it.
# A person writes to postmaster a few times a day; a sender refused with 4xx tries again for days.
PER_HOUR = 20
PER_CLIENT_PER_HOUR = 5
WINDOW_SECONDS = hourcap.WINDOW_SECONDS  # the hour every cap counts (`gateway.smtp.hourcap`)
BUSY = hourcap.BUSY  # `role`
# After DATA, from the write (`refused_in_write`), which knows no address: `said_to` names abuse@.
BUSY_DATA = "451 4.7.1 Too much mail to postmaster {}in the last hour, please try again later"
_BUSY_DATA_TO = "Too much mail to postmaster "
FROM_CLIENT = "from your address "
# The hour's forwards are read off the index of migration 36 (`emails_postmaster`), whose WHERE is
# this literal: SQLite takes a partial index only for a query that repeats its predicate, and a
# bound parameter does not (the count read every recorded mail of the hour instead).
_FORWARDED_SQL = "'" + FORWARDED.replace("'", "''") + "'"
_HOUR = (
    "SELECT client_ip, COUNT(*), SUM(account_id IS NULL) FROM emails"
    f" WHERE automatic = {_FORWARDED_SQL} AND received_at >= ? GROUP BY client_ip"
)


# RFC 2142's abuse@ is where complaints of spam are sent, as to postmaster@ of a problem with mail:
# it was refused ("Relay access denied", from a user "not a valid phone number"). It goes the same
# way and within the same hourly caps: its record is a `FORWARDED` one, which is what the caps count
# (and the 250 says; the server names the address there, `said_to`), but its forward is "mail to abuse".
_ROLES = frozenset({"postmaster", "abuse"})


def role(address: str) -> str:
    """Which of `_ROLES` a mail to `address` is to, as its replies and forward name it: an abuse@
    sender was told of "mail to postmaster" (with whom it shares the caps, not the name)."""
    return "abuse" if address.partition("@")[0].casefold() == "abuse" else "postmaster"


def said_to(address: str, reply: str) -> str:
    """`reply` (a 250 of `FORWARDED` or `LOOPED`, or `BUSY_DATA`) for a mail to `address`: abuse@
    named whole (past the cap after DATA, an abuse@ sender was told of too much mail to postmaster)."""
    if role(address) == "postmaster":
        return reply
    named = reply.replace("(mail to postmaster", f"(mail to {address}", 1)
    return named.replace(_BUSY_DATA_TO, f"Too much mail to {address} ", 1)


def is_postmaster(local: str) -> bool:
    return local.casefold() in _ROLES


def bounce_home(sender: Sender | None, cfg: Config, local: str, domain: str) -> bool:
    """A bounce (from <>) to the gateway's From address, or to postmaster (RFC 5321 4.5.1) or abuse@
    (RFC 2142) at a gateway domain."""
    if sender is None or sender.mail_from:
        return False
    return is_postmaster(local) or f"{local}@{domain}".casefold() == cfg.mail.from_address.casefold()


def take(envelope: Envelope, address: str, store: Store, client_ip: str | None) -> str:
    """RCPT of postmaster from a sender with an address: alone in its mail, one forward however named,
    refused for a while past the hour's cap (`busy`)."""
    if _OTHERS & envelope.__dict__.keys():
        return replies.POSTMASTER_ALONE.format(role(address))
    if "postmaster" not in envelope.__dict__:
        sender = getattr(envelope, "smsgw", None)
        if refusal := busy(store, address, client_ip, sender is not None and sender.account is not None):
            return refusal
        envelope.__dict__["postmaster"] = address
        envelope.rcpt_tos.append(address)
    return replies.OK_RCPT


def busy(store: Store, address: str, client_ip: str | None, on_acl: bool) -> str | None:
    """The refusal at RCPT of one more mail to postmaster this hour, or None: before the mail's bytes
    come. Sessions that pass it at once are counted again by `refused_in_write`."""
    over = _over_cap(store, client_ip, on_acl)
    return None if over is None else hourcap.busy(address, role(address), over)


def refused_in_write(store: Store, acceptance: Acceptance) -> str | None:
    """The refusal of a forward past the hour's cap, read in the write that would record it
    (`gateway.smtp.accept.accept_now`), or None.

    `busy` at RCPT leaves each session that passed it at once one more forward (as many as the
    listener lets connect: an admin's mailbox flooded in one burst). Writes are one at a time in the
    daemon, intake workers' too (sent over their channel), so the count here sees every forward
    recorded before. Refused with 451, not recorded unforwarded: the sender tries again later and
    the mail still reaches a person, as one refused at RCPT does."""
    if acceptance.automatic != FORWARDED:
        return None
    over = _over_cap(store, acceptance.client_ip, acceptance.account_id is not None)
    return None if over is None else BUSY_DATA.format(over)


def _over_cap(store: Store, client_ip: str | None, on_acl: bool) -> str | None:
    """Which cap one more forward would pass ("" the strangers' in all, `FROM_CLIENT` the client's),
    or None.

    Counted from the mails recorded as forwarded (`FORWARDED`), not in memory: intake workers take
    SMTP sessions in processes of their own, and each would have had a cap of its own. Only the
    hour's forwards are read (`emails_postmaster`), a few steps each, and the caps bound them: 20
    from strangers, 5 from each customer's server (on the ACL, in its own networks). Grouped by
    address in SQL, by /64 here: the stored address is the one the client connected from."""
    rows = store.db.conn.execute(_HOUR, (hourcap.hour_ago(store),)).fetchall()
    client = client_key(client_ip)  # as the lockouts count a client: its IPv4 address, its IPv6 /64
    from_client = sum(n for ip, n, _ in rows if client_key(ip) == client)
    outside = sum(strangers for _, _, strangers in rows)
    if from_client >= PER_CLIENT_PER_HOUR:
        return FROM_CLIENT
    if not on_acl and outside >= PER_HOUR:
        return ""
    return None


def refuses_others(envelope: Envelope) -> str | None:
    """The reply to any other recipient of a mail that already names postmaster."""
    taken = envelope.__dict__.get("postmaster")
    return None if taken is None else replies.POSTMASTER_ALONE.format(role(str(taken)))


def notices_only(cfg: Config, local: str, domain: str, address: str) -> str | None:
    """The refusal of a person's mail to the address the gateway's notices come from."""
    if f"{local}@{domain}".casefold() != cfg.mail.from_address.casefold():
        return None
    return replies.NOTICES_ONLY.format(address, cfg.mail.admin_address)


def _subject(head: Message, fallbacks: tuple[str, ...]) -> str:
    """The Subject as the intake reads it: from its raw value. compat32's own reading makes raw 8-bit
    (routine since SMTPUTF8 is offered) an unknown-8bit header, and "Zażółć" reached the admin as
    "Za��������" in the forward's subject and summary."""
    value = next((str(v) for name, v in head.raw_items() if name.lower() == "subject"), "")
    return decode_header(value, fallbacks, None if value.isascii() else head.get_content_charset())


def forward(
    cfg: Config,
    envelope: Envelope,
    sender: Any,
    raw: bytes,
    client_ip: str | None,
    session: Session | None = None,
    now: datetime | None = None,
) -> tuple[Acceptance, list[Notice]]:
    """The record of a postmaster mail and its forward to the admin address (none for our own forward).

    `sender` is relay.py's `Sender`. The dedup key is the mail's own, not its SMS one: a mail sent to
    a phone and to postmaster gets `452` for postmaster and comes again alone, with the same id.
    The original is attached with our Received: line on top (`received`, from `session`), as RFC 5321
    4.4 wants of a relayed mail: the admin sees who connected, not only what the sender wrote."""
    fallbacks = tuple(cfg.gateway.charset_fallbacks)
    if shape_refusal(raw) is not None:
        # Past the bounds of parts or header fields (`mimefast.shape_refusal`), which its parse
        # would spend seconds on: forwarded whole, unread, for a person (RFC 5321 4.5.1).
        head, text = Message(), ""
    else:
        head = BytesParser(policy=compat32).parsebytes(raw, headersonly=True)
        try:
            text = read_mail(raw, IntakeOptions(end_marker=None, charset_fallbacks=fallbacks)).text
        except IntakeRefused:
            text = ""  # an empty or unreadable mail is still forwarded: a person reads the original
    subject = _subject(head, fallbacks)
    message_id = str(head.get("message-id", "")).strip() or None
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
    address = str(envelope.__dict__["postmaster"])
    now = (now or datetime.now(UTC)).astimezone(UTC)  # the store's clock, in UTC as trace lines are
    trace = received(session, client_ip, cfg.gateway.hostname, address, now)
    content = forwarded.bounce_forward(
        sender=cfg.mail.from_address,
        rcpt=admin,
        domain=cfg.gateway.hostname,
        subject=subject,
        reason=f"addressed to <{address}>",
        mail_from=sender.mail_from,
        client_ip=client_ip,
        numbers=[address],
        raw=trace + raw,
        what=f"mail to {role(address)}",
        lang=cfg.gateway.language,
        now=now.timestamp(),
    )
    # From <>, as a bounce's forward: nothing answers it, so no loop can start (RFC 3834).
    return acceptance, [Notice("postmaster-forward", "", admin, content)]
