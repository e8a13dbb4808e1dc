"""R-2.3: the answer to a mail to info@: what an ACL user and their account may still send this month
and today, by the same usage counters the limits read (`gateway.smtp.accept.Limits`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from acl.limits import period_keys
from gateway import notify, wording

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.accountrecord import Account
    from gateway.store.accounts import User
    from gateway.store.db import Store


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
