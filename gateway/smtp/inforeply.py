"""R-2.3: the answer to a mail to info@: what an ACL user and their account may still send this month
and today, by the same usage counters the limits read (`gateway.smtp.accept.Limits`); at most
`PER_HOUR` answers an hour to one address (`gateway.smtp.hourcap`), as postmaster@'s forwards are capped.
"""

from __future__ import annotations

from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING

import structlog

from acl.limits import period_keys
from gateway import notify, wording
from gateway.smtp import hourcap, mimefast, replies
from gateway.smtp.intake import IntakeRefused, read_mail

if TYPE_CHECKING:
    from aiosmtpd.smtp import Envelope

    from gateway.config import Config
    from gateway.smtp.gate import Gate, Sender
    from gateway.store.accountrecord import Account
    from gateway.store.accounts import User
    from gateway.store.db import Store

log = structlog.get_logger(__name__)

# A person asks a few times a day; 30 empty mails to info@ in one session had 30 answers.
PER_HOUR = 5
# The hour's answers to one address, off `outbox_age` (state, created_at): the hour's mail, not all.
# The address in any case: users are found by it COLLATE NOCASE, so each case of it was a cap of its own.
_ANSWERED = (
    "SELECT COUNT(*) FROM outbox WHERE state IN ('queued', 'active', 'sent', 'failed')"
    " AND created_at >= ? AND kind = 'info' AND rcpt = ? COLLATE NOCASE"
)


def over_cap(store: Store, rcpt: str) -> bool:
    """Whether `rcpt` had its `PER_HOUR` answers within the hour: read before the answer is made,
    and again in the write that would queue it (`gateway.smtp.accept.Writes.info`)."""
    answered = store.db.conn.execute(_ANSWERED, (hourcap.hour_ago(store), rcpt)).fetchone()[0]
    return int(answered) >= PER_HOUR


async def answer(gate: Gate, envelope: Envelope, sender: Sender) -> str:
    """Answer info@ with limits and use; machine mail to info@ is ignored so no loop can start. The
    reply to the mail: a 250, or `hourcap.BUSY` past the hour's answers to the sender."""
    if sender.account is None or sender.user is None:  # a user's (a probe's sender is none)
        return replies.OK
    raw = envelope.original_content or b""
    try:
        mail = read_mail(raw, empty_sender=not sender.mail_from)
        automatic, asked = mail.automatic, mail.message_id
    except IntakeRefused as exc:
        if exc.reply in mimefast.SHAPE_REFUSALS:
            return exc.reply  # its headers not parsed again: their number is why it was refused
        # An empty mail is the normal way to ask; its Message-ID is read from its headers alone.
        said = BytesHeaderParser(policy=compat32).parsebytes(raw).get("Message-ID")
        automatic, asked = None, None if said is None else str(said)
    if automatic:
        log.info("smtp.info_ignored", reason=automatic)
        return replies.OK
    asked_at = [a for a in envelope.rcpt_tos if a.partition("@")[0].casefold() == "info"]
    busy = hourcap.busy(asked_at[0] if asked_at else "info", "info")
    if over_cap(gate.store, sender.mail_from):
        log.info("smtp.info_capped", to=sender.mail_from)
        return busy
    content = info_reply(gate.config, gate.store, sender.account, sender.user, gate.now(), in_reply_to=asked)
    if not await gate.writes.info(sender.mail_from, content):  # another session's answer came first
        log.info("smtp.info_capped", to=sender.mail_from)
        return busy
    log.info("smtp.info_answered", to=sender.mail_from)
    return replies.OK


def info_reply(
    cfg: Config,
    store: Store,
    account: Account,
    user: User | None,
    now: datetime,
    *,
    in_reply_to: str | None = None,
) -> bytes:
    """What an ACL user may still send. `in_reply_to`: the request's Message-ID, so that the answer
    is threaded with it (In-Reply-To, References) as every other notice about a mail is."""
    keys, lang = period_keys(now), cfg.gateway.language

    def used(n: int, limit: int | None) -> str:
        return (
            wording.USAGE_OF(lang, used=n, limit=limit)
            if limit is not None
            else wording.USAGE_UNLIMITED(lang, used=n)
        )

    def line(label: str, scope: str, monthly: int | None, daily: int | None) -> str:
        month = used(store.accounts.usage(scope, keys["monthly"]), monthly)
        day = used(store.accounts.usage(scope, keys["daily"]), daily)
        return wording.USAGE_LINES(
            lang, label=label, month_key=keys["monthly"], month=month, day_key=keys["daily"], day=day
        )

    body = wording.USAGE_HEAD(lang) + "\n\n"
    if user is not None:
        label = wording.USAGE_USER(lang, name=user.email)
        body += line(label, f"user:{user.id}", user.monthly_limit, user.daily_limit) + "\n"
    label = wording.USAGE_ACCOUNT(lang, name=account.name)
    body += line(label, f"account:{account.id}", account.monthly_limit, account.daily_limit)
    rcpt = user.email if user else ""
    return notify.notice(
        sender=cfg.mail.from_address,
        rcpt=rcpt,
        domain=cfg.gateway.hostname,
        subject=wording.USAGE_SUBJECT(lang),
        content=body,
        in_reply_to=in_reply_to,
        now=now.timestamp(),
    )
