"""DATA-time policy: the checks that need the planned text and must run in the accepting transaction.

Limits (R-2.2) and the identical-text rule (R-2.4) read counters and the queue; running them inside
the same transaction that writes the mail makes check-and-reserve atomic, so concurrent sessions
cannot overspend the last parts of a quota. The decisions themselves are the pure functions in
`acl/`; this module only feeds them rows and turns results into SMTP replies and notices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from acl.limits import first_exceeded, period_keys, quotas
from gateway.config import Config
from gateway.store.accounts import Account, User
from gateway.store.db import Store


@dataclass(frozen=True, slots=True)
class Admission:
    check: Callable[[Store], str | None]
    after: Callable[[Store, int], None]


def _notice(cfg: Config, rcpt: str, subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"SMS gateway <{cfg.mail.from_address}>"
    msg["To"] = rcpt
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now().astimezone())
    msg["Message-ID"] = make_msgid(domain=cfg.gateway.hostname)
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content(body)
    return msg.as_bytes()


def start_of_day(now: datetime) -> float:
    return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def admission(
    cfg: Config,
    *,
    account: Account,
    user: User | None,
    numbers: list[str],
    text: str,
    parts: int,
    now: datetime,
    extra_after: Callable[[Store, int], None] | None = None,
) -> Admission:
    needed = parts * len(numbers)
    keys = period_keys(now)
    user_row = (user.id, user.email, user.monthly_limit, user.daily_limit) if user else (0, "-", None, None)
    account_row = (account.id, account.name, account.monthly_limit, account.daily_limit)
    all_quotas = quotas(now=now, user=user_row, account=account_row)
    if user is None:
        all_quotas = [q for q in all_quotas if not q.scope.startswith("user:")]
    day_start = start_of_day(now)

    def check(store: Store) -> str | None:
        for number in numbers:
            if store.policy.identical_count(number, text, day_start) >= cfg.gateway.identical_per_day:
                return (
                    f"550 5.7.1 More than {cfg.gateway.identical_per_day} identical SMS to {number} today"
                    " are not allowed (operator anti-spam rule)"
                )
        exceeded = first_exceeded([(q, store.accounts.usage(q.scope, q.key)) for q in all_quotas], needed)
        if exceeded is None:
            return None
        q = exceeded.quota
        if user is not None and store.policy.first_limit_notice(q.scope, q.key):
            store.outbox.enqueue_mail(
                "limit",
                cfg.mail.from_address,
                user.email,
                _notice(
                    cfg,
                    user.email,
                    f"SMS limit reached: {q.period} limit of {q.owner}",
                    f"Your email was not sent as SMS: the {q.period} limit of {q.owner} is {q.limit} SMS"
                    f" parts, {exceeded.used} are used, and the email needed {needed}.\n"
                    "Ask your administrator to raise the limit, or wait for the next period.\n",
                ),
            )
        return exceeded.reply()

    def after(store: Store, email_id: int) -> None:
        scopes = [f"account:{account.id}"] + ([f"user:{user.id}"] if user else [])
        store.accounts.add_usage(scopes, [keys["monthly"], keys["daily"]], needed)
        if extra_after is not None:
            extra_after(store, email_id)

    return Admission(check, after)


def info_reply(cfg: Config, store: Store, account: Account, user: User | None, now: datetime) -> bytes:
    """R-2.3: what an ACL user may still send, answered to a mail to info@<domain>."""
    keys = period_keys(now)

    def line(label: str, scope: str, monthly: int | None, daily: int | None) -> str:
        used_m = store.accounts.usage(scope, keys["monthly"])
        used_d = store.accounts.usage(scope, keys["daily"])
        month = f"{used_m} of {monthly}" if monthly is not None else f"{used_m} (no limit)"
        day = f"{used_d} of {daily}" if daily is not None else f"{used_d} (no limit)"
        return (
            f"{label}\n  this month ({keys['monthly']}): {month} SMS parts\n"
            f"  today ({keys['daily']}): {day}\n"
        )

    body = "SMS gateway: limits and use so far\n\n"
    if user is not None:
        body += line(f"User {user.email}", f"user:{user.id}", user.monthly_limit, user.daily_limit) + "\n"
    body += line(
        f"Account {account.name}", f"account:{account.id}", account.monthly_limit, account.daily_limit
    )
    rcpt = user.email if user else ""
    return _notice(cfg, rcpt, "Your SMS limits and use", body)
