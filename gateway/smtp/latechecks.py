"""What may change between a session's RCPT or MAIL and the write that accepts its mail.

A session's checks run at MAIL (the limits) and RCPT (opt-outs), compose's leave-out of the numbers
that had their identical SMS today reads what was committed before DATA. Between those moments and
the accepting transaction other sessions, the phone and the admin go on: a mail of another session
makes a number's last identical SMS, the phone answers STOP, `user set --monthly-limit` lowers a
limit. Each is looked at again here, in the transaction that writes the rows (`accept_now`):

- a number over the identical-text rule now, or opted out now, is left out of the mail, as compose
  (identical) and RCPT (opt-out) would have left it out had the other mail, or the STOP, come first:
  the mail goes to the others and its sender is told of the numbers left out; only a mail with no
  number left is refused (a `550` bounces the whole mail, and a group's other numbers got nothing);
- the quotas are checked against the limits in force now, not those read at MAIL.

Everything is read through the settings cache (`gateway.store.cache`), which any change of users,
accounts or opt-outs empties, so a mail costs no statement more while nothing changed; the counts
of identical texts were read here already.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from gateway import notify, wording
from gateway.smtp import replies
from gateway.smtp.identical import identical_blocked, identical_reply
from gateway.store.accounts import NotFound
from gateway.store.db import Store
from gateway.store.records import Acceptance
from gateway.wording import Phrase

if TYPE_CHECKING:
    from gateway.smtp.accept import Limits, Notice

NOT_SENT_OPTED_OUT_TEXT = Phrase(
    "Your mail was sent as SMS to {sent}, but not to {blocked}: the number went on the opt-out list"
    " (the phone's opt-out word, or an admin) while your mail was being handed to the gateway.",
    "Wiadomość wysłano jako SMS do {sent}, ale nie do {blocked}: numer trafił na listę rezygnacji"
    " (słowo rezygnacji wysłane z telefonu albo decyzja administratora) w trakcie przekazywania"
    " wiadomości do bramki.",
)


@dataclass(frozen=True, slots=True)
class Rechecked:
    """The mail as the write sends it: without the numbers left out, with the notices naming them;
    or `refused`, when no number is left."""

    acceptance: Acceptance
    limits: Limits
    notices: Sequence[Notice]
    refused: str | None = None


def user_row(store: Store, user_id: int) -> tuple[str, int | None, int | None] | None:
    """(email, monthly limit, daily limit) of the user now, None when removed; from the settings
    cache, which any change of a user (any process's) empties: no statement per mail on a hit."""
    user: tuple[str, int | None, int | None] | None = store.db.settings.get(
        "user by id", user_id, partial(_user_by_id, store, user_id)
    )
    return user


def _user_by_id(store: Store, user_id: int) -> tuple[str, int | None, int | None] | None:
    """Kept in the cache as the tuple `user_row` returns (not rebuilt from the row on every mail)."""
    row = store.db.conn.execute(
        "SELECT email, monthly_limit, daily_limit FROM users WHERE id = ?", (user_id,)
    ).fetchone()
    return None if row is None else (str(row[0]), row[1], row[2])


def limits_now(store: Store, acceptance: Acceptance, limits: Limits) -> Limits:
    """`limits` with the limit of each quota as it is now: an admin may have lowered one (or set
    one) since MAIL read them, and the sessions between MAIL and DATA then spent past it."""
    key = (acceptance.account_id, acceptance.user_id)
    in_force = store.db.settings.get("limits in force", key, lambda: _in_force(store, *key))
    for _owner, scope, monthly, daily in limits.limit_rows:
        now = in_force.get(scope)
        if now is not None and now != (monthly, daily):
            break
    else:
        return limits  # the common case: nothing changed since MAIL
    rows = []
    for owner, scope, monthly, daily in limits.limit_rows:
        now = in_force.get(scope)
        rows.append((owner, scope, monthly, daily) if now is None else (owner, scope, now[0], now[1]))
    return replace(limits, limit_rows=tuple(rows))


def _in_force(
    store: Store, account_id: int | None, user_id: int | None
) -> dict[str, tuple[int | None, int | None]]:
    """(monthly, daily) limit by usage scope, of the account and the user; kept in the settings
    cache, which a change of either empties."""
    out: dict[str, tuple[int | None, int | None]] = {}
    if account_id is not None:
        try:
            account = store.accounts.account_by_id(account_id)
        except NotFound:  # removed: `_suspended` has refused the mail already
            return out
        out[f"account:{account_id}"] = (account.monthly_limit, account.daily_limit)
    if user_id is not None and (user := user_row(store, user_id)) is not None:
        out[f"user:{user_id}"] = (user[1], user[2])
    return out


def opted_out(store: Store, account_id: int | None, numbers: Sequence[str]) -> list[str]:
    """Those of `numbers` on the shared opt-out list or the account's own now. Both lists from the
    settings cache (an opt-out's write empties it, whoever writes): membership tests on a hit. The
    shared list as RCPT reads it (`PolicyRepo.is_opted_out`)."""
    own = store.policy.account_optouts(account_id) if account_id is not None else frozenset()
    if own is None:
        marks = ",".join("?" * len(numbers))
        rows = store.db.conn.execute(
            f"SELECT number FROM account_optouts WHERE account_id = ? AND number IN ({marks})",
            [account_id, *numbers],
        )
        own = frozenset(r[0] for r in rows)
    shared = store.policy.is_opted_out
    return [n for n in numbers if n in own or shared(n)]


def recheck(
    store: Store, acceptance: Acceptance, limits: Limits, notices: Sequence[Notice], reached: set[str]
) -> Rechecked:
    """Leave out the numbers opted out or over the identical-text rule now (of `limits.numbers`,
    the ones an earlier copy did not reach), and take the limits in force now; refuse the mail when
    none of its numbers is left."""
    opted = opted_out(store, acceptance.account_id, limits.numbers)
    rest = limits.without(set(opted)) if opted else limits
    blocked = identical_blocked(store, rest) if rest.numbers else []
    if not opted and not blocked:
        return Rechecked(acceptance, limits_now(store, acceptance, limits), notices)
    out = {*opted, *blocked}
    messages = [m for m in acceptance.messages if m.recipient not in out]
    if not messages:
        # As RCPT or compose would have answered it alone: the opt-out's reply, else the rule's.
        if opted:
            first = next(m for m in acceptance.messages if m.recipient == opted[0])
            by = store.policy.optout_by(opted[0], acceptance.account_id) or ["mo"]
            refusal = replies.opted_out(first.rcpt or opted[0], list(limits.optin_words), by)
        else:
            refusal = identical_reply(limits.identical_per_day, blocked[0])
        return Rechecked(acceptance, limits, notices, refused=refusal)
    told = list(notices)
    # Not told again when the client sends the same transaction again (its 250 lost): the first
    # copy told of them, as compose's leave-out tells once.
    if not reached & {m.recipient for m in acceptance.messages}:
        sent = [m.recipient for m in messages]
        for left_out, text in ((opted, NOT_SENT_OPTED_OUT_TEXT), (blocked, wording.NOT_SENT_IDENTICAL_TEXT)):
            if left_out and (notice := _notice(store, acceptance, limits, sent, left_out, text)):
                told.append(notice)
    left = limits_now(store, acceptance, limits.without(out))
    return Rechecked(replace(acceptance, messages=messages), left, told)


def _notice(
    store: Store, acceptance: Acceptance, limits: Limits, sent: list[str], left: list[str], text: Phrase
) -> Notice | None:
    """The "Not sent as SMS to …" notice compose gives for its leave-out, to the same address (the
    account's notify address, else the sender) and answering the mail, from the null sender as
    compose's; the sender is not told of numbers its RCPT asked NOTIFY=NEVER for (None: none left)."""
    from gateway.smtp.accept import Notice  # accept imports this module

    to = acceptance.mail_from
    if acceptance.account_id is not None:
        try:
            to = store.accounts.account_by_id(acceptance.account_id).notify_address or to
        except NotFound:
            pass
    if to.casefold() == acceptance.mail_from.casefold():
        never = {m.recipient for m in acceptance.messages if m.notify == "never"}
        if not (left := [n for n in left if n not in never]):
            return None
    lang = limits.language
    values: dict[str, Any] = dict(
        sent=", ".join(sent), blocked=", ".join(left), limit=limits.identical_per_day
    )
    content = notify.notice(
        sender=limits.notice_from,
        rcpt=to,
        domain=limits.hostname,
        subject=wording.NOT_SENT_IDENTICAL_SUBJECT(
            lang, blocked=", ".join(left), subject=acceptance.subject or wording.NO_SUBJECT(lang)
        ),
        content=text(lang, **values),
        in_reply_to=limits.message_id,
        now=store.clock(),
    )
    return Notice("not-sent", "", to, content)
