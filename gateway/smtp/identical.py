"""R-2.4's operator rule: more than `identical_per_day` SMS with the same text to one number in a day
are not sent (F13). An SMS counts toward the day it reaches the SMSC (`identical_count`): one sent
toward the day it went, whatever day its mail came, one still waiting (held for quiet hours, queued
behind an outage, held) toward today.

Checked twice. `compose` leaves the numbers that have had theirs out of a mail to several numbers
before the rows and notices are built, so that a group mail goes to the others and its confirmation
names only those; its sender gets one "Not sent as SMS" notice naming the rest (none again when the
same transaction is retried: its numbers reached before are not checked, they had this mail
already). `accept_now` checks the numbers left once more in the transaction that writes the rows,
for a mail of another session that made a number's last identical SMS in between (and for a mail to
one number, which only it checks): those numbers are left out there as here, with the same notice
(`gateway.smtp.latechecks`), and only a mail with no number left is refused.

An answer in a conversation loses its subject (the phone has it); the rule counts it also with the
text it would have had with the subject, or "Hi: text" and three "text" made four.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING

from gateway import notify, wording
from gateway.config import Config
from gateway.store.db import Store

if TYPE_CHECKING:
    from gateway.smtp.accept import Limits


def start_of_day(now: datetime) -> float:
    """Where a day's count starts: midnight on the clock `now` is read in ([gateway] timezone)."""
    return _midnight(now.date(), now.tzinfo)


@lru_cache(maxsize=16)
def _midnight(day: date, zone: tzinfo | None) -> float:
    """Once a day and zone: read through the zone's rules for every mail, 0.5 % of the relay's CPU."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def identical_today(
    store: Store,
    cfg: Config,
    numbers: Sequence[str],
    text: str,
    also: str | None,
    dedup_key: str | None,
    now: datetime,
) -> tuple[list[str], bool]:
    """(the numbers that had their identical SMS today, whether this is a retry of a transaction
    that reached some of `numbers` already). Reads only: an intake worker runs it on its own.

    A mail to one number is left to `accept_now`'s check, which refuses it whole, as this one would:
    two statements less per mail on the common path."""
    if len(numbers) < 2:
        return [], False
    reached = store.queue.reached_before(dedup_key)
    since, limit, count = start_of_day(now), cfg.gateway.identical_per_day, store.policy.identical_count
    blocked = [n for n in numbers if n not in reached and count(n, text, since, also) >= limit]
    return blocked, bool(reached.intersection(numbers))


def identical_blocked(store: Store, limits: Limits) -> list[str]:
    """The numbers of `limits` over the rule now, in the accepting transaction."""
    count, text, since, also = (
        store.policy.identical_count,
        limits.text,
        limits.day_start,
        limits.text_with_subject,
    )
    return [n for n in limits.numbers if count(n, text, since, also) >= limits.identical_per_day]


def identical_reply(limit: int, number: str) -> str:
    """The operator's words, then what the sender can do (one line: Outlook shows only its text).
    The count is the day's ([gateway] timezone): the same text goes again tomorrow."""
    return (
        f"550 5.7.1 More than {limit} identical SMS to {number} today are not allowed"
        " (operator anti-spam rule); change the text or send it tomorrow"
    )


def identical_refusal(cfg: Config, number: str) -> str:
    return identical_reply(cfg.gateway.identical_per_day, number)


def identical_notice(
    cfg: Config,
    rcpt: str,
    subject: str,
    sent: Sequence[str],
    blocked: Sequence[str],
    in_reply_to: str | None = None,
    *,
    now: float | None = None,
) -> bytes:
    """What the sender of a group mail hears of the numbers left out, dated `now` (`notify.mail_date`)."""
    limit, lang = cfg.gateway.identical_per_day, cfg.gateway.language
    content = wording.NOT_SENT_IDENTICAL_TEXT(
        lang, sent=", ".join(sent), blocked=", ".join(blocked), limit=limit
    )
    return not_sent_notice(cfg, rcpt, subject, blocked, content, in_reply_to, now=now)


def not_sent_notice(
    cfg: Config,
    rcpt: str,
    subject: str,
    blocked: Sequence[str],
    content: str,
    in_reply_to: str | None,
    *,
    now: float | None,
) -> bytes:
    """The "Not sent as SMS" notice of the numbers a rule left out of a group mail, its words
    `content`: the identical-text rule's and the loop guard's (`gateway.smtp.mailloop`)."""
    lang = cfg.gateway.language
    return notify.notice(
        sender=cfg.mail.from_address,
        rcpt=rcpt,
        domain=cfg.gateway.hostname,
        subject=wording.NOT_SENT_IDENTICAL_SUBJECT(
            lang, blocked=", ".join(blocked), subject=subject or wording.NO_SUBJECT(lang)
        ),
        content=content,
        in_reply_to=in_reply_to,
        now=now,
    )
