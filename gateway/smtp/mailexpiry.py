"""A mail's own end: Outlook's "Expires after" (`Expiry-Date:`, RFC 4021) and `Expires:`, read by
`compose` to refuse a mail whose text is stale by the time its SMS could go, to shorten an SMS's
validity to the mail's, and to tell a retry's sender of numbers it named only after the expiry.

Its own module because the rules (the clocks' skew, quiet hours, a retry of a mail taken already)
are one decision about time, apart from turning a mail into rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog

from gateway import accountrules, notify, wording
from gateway.config import Config
from gateway.smtp import replies
from gateway.smtp.intake import MailText
from gateway.store.accountrecord import Account

log = structlog.get_logger(__name__)

# How far the sender's clock may be ahead of ours: a mail whose expiry passed this little before it
# came (or before its quiet hours end) is sent, not refused; past that, its text is taken as stale.
EXPIRY_SKEW = timedelta(minutes=5)
# What such a mail's SMS gets: the shortest validity an SMSC can be told (CIMD2's first code).
SHORTEST_VALIDITY = timedelta(seconds=accountrules.SHORTEST_VALIDITY_SECONDS)


def expired(expiry_date: datetime | None, now: datetime, held_until: datetime | None) -> str | None:
    """The refusal of a mail whose `Expiry-Date` (Outlook's "Expires after") has passed by the time its
    SMS could go: when it came, or when quiet hours end. Its text is worthless by then (a meeting that
    is over), and a mail held by the sender's server or Outbox must not make a phone ring about it. A
    permanent reply, so that the sender's server bounces the mail to them: nothing is lost unseen.
    `Expires:` never refuses: PHP's nocache date (1981) and netnews' article expiry write it too."""
    start = utc(held_until or now)
    if expiry_date is None or expiry_date > start - EXPIRY_SKEW:
        return None
    log.info("smtp.expiry_past", expires=expiry_date.isoformat(), start=start.isoformat(), refused=True)
    if held_until is None:
        why = "past"
    else:
        why = f"before its SMS may go at {shown(held_until, now)} (the account's quiet hours)"
    return replies.EXPIRED.format(expiry=shown(expiry_date, now), why=why)


def expired_notice(
    cfg: Config, rcpt: str, mail: MailText, sent: Sequence[str], late: Sequence[str], now: datetime
) -> bytes:
    """What the sender hears of the numbers a retry past the mail's expiry named first: the identical
    rule's "Not sent as SMS" notice, with the expiry as the reason."""
    lang, expiry = cfg.gateway.language, mail.expiry_date
    return notify.notice(
        sender=cfg.mail.from_address,
        rcpt=rcpt,
        domain=cfg.gateway.hostname,
        subject=wording.NOT_SENT_IDENTICAL_SUBJECT(
            lang, blocked=", ".join(late), subject=mail.subject or wording.NO_SUBJECT(lang)
        ),
        content=wording.NOT_SENT_EXPIRED_TEXT(
            lang,
            sent=", ".join(sent),
            late=", ".join(late),
            expiry=shown(expiry, now) if expiry is not None else "",
        ),
        in_reply_to=mail.message_id,
        now=now.timestamp(),
    )


def shown(when: datetime, now: datetime) -> str:
    """A time as the gateway's zone writes it, whatever zone the mail wrote it in: ASCII only. The year
    has its four digits (strftime writes year 1 as "1"); a date at the calendar's very start (year 1),
    which in the gateway's zone would fall before it, is written in the mail's own zone."""
    try:
        local = when.astimezone(now.tzinfo)
    except OverflowError:
        local = when
    return f"{local.year:04d}-{local:%m-%d %H:%M %Z}".strip().encode("ascii", "replace").decode()


def valid_until(
    cfg: Config, account: Account, mail: MailText, now: datetime, held_until: datetime | None
) -> datetime | None:
    """The mail's own expiry where it ends its SMS's validity sooner than the account's; None leaves
    the account's. An `Expiry-Date` passed less than `EXPIRY_SKEW` before the SMS may go (`expired`
    refused the others, but for a retry) is the sender's clock ahead of ours: the SMS gets the shortest
    validity, neither none (it would expire unsent) nor the account's whole day. An `Expires:` counts
    only while ahead: past, it is another program's meaning (a web page's cache) and ignored; ahead of
    the mail but before quiet hours end, the SMS expires unsent and its sender is told by the queue.

    A date just ahead gets the shortest validity too, never less: an SMSC needs time to deliver (a
    phone paged, a retry after a busy network), and the sender's "soon" means the shortest we give.
    Taken as it was written, an `Expiry-Date` 3 s ahead gave 3 s, less than one 10 s past."""
    start = utc(held_until or now)
    found: list[datetime] = []
    if (expiry := mail.expiry_date) is not None:
        if expiry <= start:
            log.debug("smtp.expiry_past", expires=expiry.isoformat(), start=start.isoformat(), refused=False)
            expiry = start + SHORTEST_VALIDITY
        found.append(expiry)
    if (expires := mail.expires) is not None:
        if expires > now:
            found.append(expires)
        else:
            log.debug("smtp.expires_past_ignored", expires=expires.isoformat(), now=now.isoformat())
    if not found:
        return None
    until = min(found)
    if until > start:
        until = max(until, start + SHORTEST_VALIDITY)
    if (until - start).total_seconds() >= accountrules.validity_seconds(cfg, account):
        return None
    return until.astimezone(now.tzinfo) if now.tzinfo is not None else until


def utc(when: datetime) -> datetime:
    """`when` in UTC, for arithmetic: Python adds to a datetime in its zone's wall-clock time, so in
    the first minutes after a DST change "5 minutes before 03:02 CEST" was 02:57, an hour out (a
    mail expiring at 03:30 refused as past; in October one expired 51 minutes before, taken)."""
    return when.astimezone(UTC) if when.tzinfo is not None else when
