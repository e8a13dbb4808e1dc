"""The limits of one email: what its session reads of them (`limits_for`, at MAIL and DATA), and the
quota refusal the accepting write makes of them (`quota_refusal`), with the notice that tells the user.

`Limits` crosses from an intake worker to the daemon with every mail, so it carries the user's and the
account's limits as plain rows (`acl.limits.LimitRow`): the quotas are made of them only where a
limit is set, which most users and accounts have none of.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, tzinfo

from acl.limits import LimitRow, Quota, first_exceeded, period_keys, quotas, zone_name
from gateway import notify, wording
from gateway.config import Config
from gateway.smtp.identical import start_of_day
from gateway.store.accountrecord import Account
from gateway.store.accounts import User
from gateway.store.db import Store
from gateway.wording import Language
from smsc.makers import maker


@dataclass(frozen=True, slots=True)
class Limits:
    """The DATA-time rules for one email, checked and charged inside its transaction."""

    numbers: tuple[str, ...]
    text: str
    needed: int  # parts for all recipients
    # The user's (when the mail has one) and the account's limits, as `acl.limits.LimitRow`s: the
    # quotas are made of them (`quotas`) only where a limit is set.
    limit_rows: tuple[LimitRow, ...]
    day_start: float  # identical texts are counted from here
    identical_per_day: int
    scopes: tuple[str, ...]  # usage counters charged: the account's, the user's
    periods: tuple[str, ...]  # for this month and today
    user_email: str | None  # told once per period when a limit refuses the mail
    notice_from: str
    hostname: str
    # The SMS text the mail would have made with its subject, when a conversation dropped it:
    # the identical-text rule counts both (else the first SMS, "Hi: text", and three "text" passed).
    text_with_subject: str | None = None
    message_id: str | None = None  # of the mail: a limit's notice answers it
    zone: tzinfo | None = None  # [gateway] timezone, whose calendar the periods are of
    language: Language = "en"  # [gateway] language: of the notice a limit sends
    # The parts each of `numbers` gets, in their order (`needed` is their sum): a conversation's
    # phone gets its answer without the subject, fewer parts than the others (compose).
    per_number: tuple[int, ...] = ()
    # The client address the relay port took the mail from on its network alone (no login): the
    # accepting write checks that address is still one of the account's (`network_gone`).
    relay_client: str | None = None
    # [gateway] optin_words, which the opt-out reply names (a mail whose numbers all opted out since RCPT).
    optin_words: tuple[str, ...] = ()
    zone_name: str = ""  # the time zone as a limit's refusal names it (`acl.limits.zone_name`)

    @property
    def quotas(self) -> tuple[Quota, ...]:
        """Each limit of `limit_rows` in this month and today, set or not."""
        return quotas(self.limit_rows, (self.periods[0], self.periods[1]), self.zone_name)

    @property
    def any_limit(self) -> bool:
        """Whether a limit is set that can refuse the mail (a quota without one is charged, not read)."""
        return any(monthly is not None or daily is not None for _, _, monthly, daily in self.limit_rows)

    def at(self, now: float) -> Limits:
        """The periods (and the identical texts' day) of `now`, the clock the write stamps the
        mail's rows with. Composed a moment before a month's end and written after it, the mail
        was charged to the old month's counter and billed in the new month (its `created_at`)."""
        if self.zone is None:
            return self
        local = datetime.fromtimestamp(now, self.zone)
        keys = period_keys(local)
        periods = (keys["monthly"], keys["daily"])
        if periods == self.periods:
            return self
        return replace(self, periods=periods, day_start=start_of_day(local))  # the quotas' keys with them

    def without(self, reached: set[str]) -> Limits:
        """The rules for the recipients an earlier copy of the mail did not reach (R-1.8): those it
        reached get no SMS from this copy, so they are neither checked nor charged again."""
        if not reached & set(self.numbers):
            return self
        # Each number left keeps its own count: an even share of a sum of different counts charged
        # less than was sent (the conversation's phone reached, its 1 part was the share of each).
        kept = [(n, c) for n, c in zip(self.numbers, self.per_number, strict=True) if n not in reached]
        return replace(
            self,
            numbers=tuple(n for n, _ in kept),
            per_number=tuple(c for _, c in kept),
            needed=sum(c for _, c in kept),
        )


# `Limits(...)` without its frozen __init__, which set each of the 19 fields through
# `object.__setattr__` (some 1,000 instructions a field) for every mail: the fields in their order.
# tests/test_limits_filled.py holds it to what `Limits(...)` makes.
_make_limits = maker(Limits)


def quota_refusal(store: Store, limits: Limits) -> str | None:
    """The SMTP reply refusing the mail for a quota, or None; it tells the user once per period."""
    # A quota without a limit can refuse nothing: its counter is charged, not read.
    if not limits.any_limit:
        return None
    used = [(q, store.accounts.usage(q.scope, q.key)) for q in limits.quotas if q.limit is not None]
    exceeded = first_exceeded(used, limits.needed)
    if exceeded is None:
        return None
    q = exceeded.quota
    # Once per period and per user: an account's limit refuses each of its users, and each of them
    # is told once (remembered per limit alone, only the first user refused ever heard why).
    told = q.scope if q.scope.startswith("user:") else f"{q.scope} {(limits.user_email or '').casefold()}"
    if limits.user_email is not None and store.policy.first_limit_notice(told, q.key):
        used_up = exceeded.used >= (q.limit or 0)
        lang, (kind, _, name) = limits.language, q.owner.partition(" ")
        period = wording.LIMIT_PERIOD[q.period](lang) if q.period in wording.LIMIT_PERIOD else q.period
        owner = wording.LIMIT_OWNER[kind](lang, name=name) if kind in wording.LIMIT_OWNER else q.owner
        subject = wording.LIMIT_REACHED_SUBJECT if used_up else wording.LIMIT_TOO_LOW_SUBJECT
        store.outbox.enqueue_mail(
            "limit",
            limits.notice_from,
            limits.user_email,
            notify.notice(
                sender=limits.notice_from,
                rcpt=limits.user_email,
                domain=limits.hostname,
                subject=subject(lang, period=period, owner=owner),
                content=wording.LIMIT_TEXT(
                    lang, period=period, owner=owner, limit=q.limit, used=exceeded.used, needed=limits.needed
                ),
                in_reply_to=limits.message_id,
                now=store.clock(),
            ),
        )
    return exceeded.reply()


def limits_for(
    cfg: Config,
    *,
    account: Account,
    user: User | None,
    numbers: list[str],
    text: str,
    parts: int,
    now: datetime,
    text_with_subject: str | None = None,
    message_id: str | None = None,
    relay_client: str | None = None,
) -> Limits:
    """The limits that apply to this email, read from the account and user before the transaction."""
    keys = period_keys(now)
    account_scope = f"account:{account.id}"
    rows: tuple[LimitRow, ...] = (
        (f"account {account.name}", account_scope, account.monthly_limit, account.daily_limit),
    )
    scopes: tuple[str, ...] = (account_scope,)
    if user is not None:
        user_scope = f"user:{user.id}"
        rows = ((f"user {user.email}", user_scope, user.monthly_limit, user.daily_limit), *rows)
        scopes = (account_scope, user_scope)
    identical_per_day, notice_from, hostname, language, optin_words = _settings(cfg)
    return _make_limits(
        tuple(numbers),
        text,
        parts * len(numbers),
        rows,
        start_of_day(now),
        identical_per_day,
        scopes,
        (keys["monthly"], keys["daily"]),
        user.email if user else None,
        notice_from,
        hostname,
        text_with_subject,
        message_id,
        now.tzinfo,
        language,
        (parts,) * len(numbers),
        relay_client,
        optin_words,
        zone_name(now),
    )


# The settings each mail's limits carry, read once per loaded config: a config is frozen (a changed
# one is a new object), and five reads through its sections cost a mail more than its limits' rows.
_read_for: list[tuple[Config, tuple[int, str, str, Language, tuple[str, ...]]]] = []


def _settings(cfg: Config) -> tuple[int, str, str, Language, tuple[str, ...]]:
    if _read_for and _read_for[0][0] is cfg:
        return _read_for[0][1]
    gw = cfg.gateway
    settings = (gw.identical_per_day, cfg.mail.from_address, gw.hostname, gw.language, tuple(gw.optin_words))
    _read_for[:] = [(cfg, settings)]
    return settings
