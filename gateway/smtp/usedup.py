"""A sender whose limit is used up is refused at RCPT, not after the whole mail was sent (R-2.2).

Every SMS takes at least one part, so a user or account with no part left can send nothing: the
refusal came only after the final dot (up to the size limit uploaded for nothing), and permanent.
RCPT gives the same reply (`acl.limits.Exceeded`) before the body, whose count is not known yet:
it "needs at least 1" part. The accepting write still checks every quota with the parts the mail
needs, atomically.

Only once the period's notice was given (`limit_notices`, written by the DATA-time refusal that
mails it, `maillimits.quota_refusal`): the first mail past the limit goes on to DATA and its
refusal tells the user, as before. Reads only: an intake worker runs it on its own.

Only when no mail of the sender can be retried: a client resends a mail whose 250 it lost (a
timeout after the final dot), and such a retry must get "250 duplicate", which only DATA can tell
(the dedup key needs the headers). Refused at RCPT, the retry of a mail already sent got a permanent
550 and its sender a bounce saying "not sent": on the relay port a mail server's queue retry, on the
submission port Outlook's or Thunderbird's outbox, or a company's Postfix relaying through it with a
login. So a sender who mailed the gateway within the retry window (`accepting.RETRY_WINDOW_SECONDS`,
its latest mail in `emails_sender`) goes on to DATA, which checks the key first and then the limit,
with the words it always had and no second notice; so does the relay port, whose sessions never log
in. The early refusal is left for the user whose account's limit others used up, or whose monthly
limit was used up over a week ago: nothing of theirs can come again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from acl.limits import Exceeded, LimitRow, first_exceeded, period_keys, quotas, zone_name
from gateway.smtp.gate import Sender
from gateway.store.accepting import RETRY_WINDOW_SECONDS
from gateway.store.db import Store

_TOLD = "SELECT 1 FROM limit_notices WHERE scope = ? AND period = ?"
# The sender's latest mail, by `emails_sender` (the key is made of the envelope sender as the row has it).
_LATEST = "SELECT received_at FROM emails WHERE mail_from = ? COLLATE NOCASE ORDER BY id DESC LIMIT 1"


def used_up(store: Store, sender: Sender, clock: Callable[[], datetime], logged_in: bool) -> str | None:
    """The refusal of a number for `sender`, whose user's or account's limit has no part left
    and who was told of it this period; None when a part is left (or no limit is set), or when
    the mail may be a retry: the session did not log in, or the sender mailed within the retry
    window (it goes on to DATA's duplicate check). Asked at every RCPT: a sender with no limit
    (most) is answered before the time or a row is made."""
    account, user = sender.account, sender.user
    if account is None or not logged_in:
        return None
    limits = (account.monthly_limit, account.daily_limit)
    if limits == (None, None) and (user is None or (user.monthly_limit, user.daily_limit) == (None, None)):
        return None  # most senders: no statement
    rows: list[LimitRow] = []
    if user is not None:
        rows.append((f"user {user.email}", f"user:{user.id}", user.monthly_limit, user.daily_limit))
    rows.append((f"account {account.name}", f"account:{account.id}", *limits))
    now = clock()
    keys = period_keys(now)
    periods = (keys["monthly"], keys["daily"])
    limited = [q for q in quotas(tuple(rows), periods, zone_name(now)) if q.limit is not None]
    exceeded = first_exceeded([(q, store.accounts.usage(q.scope, q.key)) for q in limited], 1)
    if exceeded is None or not _told(store, exceeded, sender) or _may_retry(store, sender, now.timestamp()):
        return None
    return exceeded.reply(at_least=True)


def _may_retry(store: Store, sender: Sender, now: float) -> bool:
    """Whether a mail of this sender was taken within the retry window, which this one may be a copy of."""
    row = store.policy.conn.execute(_LATEST, (sender.mail_from,)).fetchone()
    return row is not None and row[0] >= now - RETRY_WINDOW_SECONDS


def _told(store: Store, exceeded: Exceeded, sender: Sender) -> bool:
    """Whether the refusal that mails the notice was given this period (its key as it writes it)."""
    q = exceeded.quota
    if q.scope.startswith("user:"):
        told = q.scope
    else:
        told = f"{q.scope} {(sender.user.email if sender.user else '').casefold()}"
    return store.policy.conn.execute(_TOLD, (told, q.key)).fetchone() is not None
