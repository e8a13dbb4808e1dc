"""An SMS to a company's own number that answers no conversation, mailed to the company.

A customer who texts the company first, or answers after the reply window, wrote to the number
the company's SMS come from (`account set --sender`): it went to the operator's `[replies]
fallback_address`, who forwarded it by hand. An account that sets `--inbound-address` gets such
SMS itself, in the fallback mail's format (from the phone, so that a Reply answers it).

Only a number that is exactly one account's can tell whose such an SMS is: the gateway's default
sender and the reply pool are many accounts' numbers, and a number two accounts give as their
sender is both of theirs; an SMS to those stays the operator's. So does one whose last SMS from
that number to the phone was another account's (the number changed hands): it may answer them.
The phone's conversations tell that only while they are kept: a number another account sent from
stays the operator's for the retention plus that account's reply window after it stopped (the
longest its conversations on the number are kept), whether the purge has deleted them or not.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.config import Config
from gateway.conversations.numbers import digit_forms, normalise
from gateway.conversations.pool import pool_set
from gateway.conversations.replymail import from_domain, unthreaded
from gateway.conversations.rows import Conversation
from gateway.mailcopy import fallback_for
from gateway.store.db import Store
from gateway.store.forwardsteps import kept_steps, seconds_after

# How `repo.gone` says the user left; the company is not told where a former user went
# (`states.told` says the same to a company admin).
_LEFT = (", who belongs to another account since", ", who is no longer a user of the gateway")


@dataclass(frozen=True, slots=True)
class Inbound:
    """The one account whose own number an SMS came to, and where it wants such SMS mailed."""

    account_id: int
    name: str
    address: str


def alike(a: str, b: str, region: str) -> bool:
    """Whether two numbers as configured may be one: the same in E.164, or digits that read the same
    (`digit_forms`). A number the plan does not know stays as written, and "+48100200300" and
    "48100200300" were two numbers: the gateway's default sender written without its "+" as an
    account's sender made that account the owner of every first contact to the shared number. Any
    reading in common counts as one number, so that a doubt keeps the SMS the operator's."""
    na, nb = normalise(a, region), normalise(b, region)
    return na == nb or not set(digit_forms(na, region)).isdisjoint(digit_forms(nb, region))


def any_address(conn: sqlite3.Connection) -> bool:
    """Whether any account has an inbound address: the hourly limit of a phone's answers counts then."""
    found = conn.execute("SELECT 1 FROM accounts WHERE inbound_address IS NOT NULL LIMIT 1").fetchone()
    return found is not None


def owner_of(conn: sqlite3.Connection, cfg: Config, number: str, last: Conversation | None) -> Inbound | None:
    """The account that alone sends from `number` (as the conversations store it), if it has an
    inbound address; None for a number shared by several, and when `last` (the conversation the SMS
    most likely answers) is another account's or one of no account."""
    region = cfg.gateway.default_region
    if any(alike(n, number, region) for n in pool_set(tuple(cfg.replies.pool), region)):
        return None
    if alike(cfg.gateway.default_sender, number, region):
        return None  # every account without a sender of its own sends from it
    rows = conn.execute(
        "SELECT id, name, sender, inbound_address FROM accounts WHERE sender IS NOT NULL"
    ).fetchall()
    owners = [r for r in rows if alike(r[2], number, region)]
    if len(owners) != 1 or not owners[0][3]:
        return None
    account_id, name, _, address = owners[0]
    if last is not None and last.account_id != account_id:
        return None
    if moved_until(conn, cfg, number, account_id) is not None:
        return None
    return Inbound(int(account_id), str(name), str(address))


# The database's clock, which `account_senders` (migration 52) is written on by its triggers.
_DB_NOW = "(julianday('now') - 2440587.5) * 86400.0"
# Each sender another account stopped sending from lately, read off the index by `until` (from before
# the longest period any is kept: retention plus the longest reply window, plus every step forward of
# the clock kept, a few) with how long its own account's conversations are kept after. Each row's end
# counts the steps made since it stopped as no time passed (`forwardsteps`), in Python: the steps read
# once, not once per row in SQL (2 us a row). `alike` compares a number's forms, which SQL cannot: once
# per number, however many accounts sent from it (the upgrade's seed has a row for each account and
# number its conversations show, the gateway's default sender and the reply pool among them).
_KEPT_FOR = ":retention + IFNULL(a.reply_window_days * 86400, :window)"
_LEFT_LATELY = (
    f"SELECT h.sender, h.until, h.until + {_KEPT_FOR}, {_DB_NOW} FROM account_senders h"
    " LEFT JOIN accounts a ON a.id = h.account_id"
    f" WHERE h.until >= {_DB_NOW} - :retention - :stepped"
    " - MAX(:window, IFNULL((SELECT MAX(reply_window_days) FROM accounts), 0) * 86400)"
    f" AND h.until + {_KEPT_FOR} + :stepped > {_DB_NOW} AND h.account_id IS NOT :account"
)


def moved_until(conn: sqlite3.Connection, cfg: Config, number: str, account_id: int) -> float | None:
    """Until when (Unix s, the database's clock) `number` stays the operator's because another account
    sent from it: for the retention plus that account's reply window after it stopped, its customers'
    SMS may answer it, and the purge may have deleted the conversations that would say so. That is
    the longest any of its conversations on the number is kept (its last SMS from it went by the
    time it stopped), a step forward of the clock since not counted as time passed, as their reply
    windows count it; None when no other account sent from it as late as that."""
    region = cfg.gateway.default_region
    steps = kept_steps(conn)
    binds = {
        "retention": cfg.gateway.retention_days * 86400,
        "window": cfg.replies.window_seconds,
        "account": account_id,
        "stepped": sum(seconds for _, seconds in steps),
    }
    ends: list[float] = []
    same: dict[str, bool] = {}
    for sender, until, end, now in conn.execute(_LEFT_LATELY, binds):
        if steps:
            end += seconds_after(steps, until)
        if end <= now:
            continue
        if sender not in same:
            same[sender] = alike(sender, number, region)
        if same[sender]:
            ends.append(end)
    return max(ends, default=None)


def told(reason: str) -> str:
    """The reason (or an MO's note, which may carry it anywhere: "…; not sent to …: <reason>; sent
    to …") as the company reads it: a former user is "no longer a user of this account", never that
    they belong to another account now."""
    for left in _LEFT:
        reason = reason.replace(left, ", who is no longer a user of this account")
    return reason


def mail_inbound(
    store: Store,
    cfg: Config,
    to: Inbound,
    mo_id: int,
    *,
    phone: str | None,
    subject: str,
    text: str,
    note: str,
    answered: Conversation | None,
) -> None:
    """Queued in the MO's write, as the fallback mail is. Refused for good by the company's server,
    it goes on to `[replies] fallback_address` (`replymail.answer_refused`), as a user's answer does."""
    content = unthreaded(
        phone,
        from_domain(answered.domain if answered else None, cfg.gateway.domains),
        to.address,
        subject,
        text,
        note,
        answered,
        zone=cfg.gateway.timezone,
        sender=cfg.mail.from_address,
        lang=cfg.gateway.language,
        now=store.clock(),
    )
    fallback = fallback_for(cfg, cfg.replies.fallback_address, to.address)
    store.outbox.enqueue_mail(
        "reply", cfg.mail.from_address, to.address, content, mo_ref=mo_id, fallback=fallback
    )


@dataclass(frozen=True, slots=True)
class Wording:
    """How a doubt names the settings it points to: as the operator's commands and config keys set
    them, or as the panel's pages do (a company admin has no command line, and the operator sets
    the account's Sender on its Account page)."""

    sender: str  # the account's sender setting, `{sender}` its value
    default: str  # that value when the account has none
    fallback: str  # where such SMS go instead
    add_user: str  # what makes `{address}` a user of `{account}`


CLI = Wording(
    sender="--sender {sender}",
    default="default",
    fallback="[replies] fallback_address",
    add_user="smsgw user add {address} --account {account}",
)
PANEL = Wording(
    sender="its Sender, {sender},",
    default="the installation default",
    fallback="the operator's fallback address",
    add_user="add it on the Users page",
)


def doubts(conn: sqlite3.Connection, cfg: Config, account: str, say: Wording = CLI) -> list[str]:
    """What keeps the account's inbound address from working as meant, said where it is set:
    no number of its own (the SMS stay the operator's) or one another account sent from lately
    (the operator's for a while: `moved_until`), or an address that is no user of it (its
    Reply to such a mail is refused as any mail from outside the ACL, instead of becoming the SMS)."""
    row = conn.execute(
        "SELECT id, sender, inbound_address FROM accounts WHERE name = ?", (account,)
    ).fetchone()
    if row is None or not row[2]:
        return []
    account_id, sender, address = row
    said = []
    region = cfg.gateway.default_region
    number = normalise(sender or cfg.gateway.default_sender, region)
    probe = conn.execute(
        "SELECT id, name, sender, inbound_address FROM accounts WHERE sender IS NOT NULL"
    ).fetchall()
    mine = [r for r in probe if alike(r[2], number, region)]
    if (
        not sender
        or any(alike(n, number, region) for n in pool_set(tuple(cfg.replies.pool), region))
        or alike(cfg.gateway.default_sender, number, region)
        or [r[0] for r in mine] != [account_id]
    ):
        setting = say.sender.format(sender=sender or say.default)
        said.append(
            f"account {account} has no sender number of its own ({setting} is shared with other accounts"
            " or the gateway): SMS that answer no conversation still go to"
            f" {say.fallback}, not to the inbound address"
        )
    elif (until := moved_until(conn, cfg, number, account_id)) is not None:
        when = datetime.fromtimestamp(until, ZoneInfo(cfg.gateway.timezone))
        said.append(
            f"another account sent from {sender} lately, and its customers may still answer it: SMS"
            f" that answer no conversation go to {say.fallback} until {when:%Y-%m-%d %H:%M},"
            " not to the inbound address"
        )
    user = conn.execute(
        "SELECT a.name FROM users u JOIN accounts a ON a.id = u.account_id WHERE lower(u.email) = lower(?)",
        (address,),
    ).fetchone()
    if user is None or user[0] != account:
        said.append(
            f"{address} is not a user of account {account}: a Reply from it to such an SMS is refused"
            f" unless it is ({say.add_user.format(address=address, account=account)})"
        )
    return said
