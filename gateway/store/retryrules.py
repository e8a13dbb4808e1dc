"""Why an admin's retry of a message (`AdminRepo.retry_message`, from the CLI and the panel) is
refused: each a refusal of its own, which the caller words with what the admin can do about it.

Apart from gateway/store/admin.py because the refusals are what the CLI and the panel catch, and
the repository's verbs are not.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

# Inferred, not read (neither the header nor the validity in force at acceptance is kept): said as
# both, so that an admin who lowered the account's validity and raised it since is not told of an
# Expiry-Date the mail never had ("its mail's Expiry-Date set it").
SHORTER = (
    "sooner than its account's validity gives now, set either by an Expiry-Date in its mail (the"
    " sender said its text is stale by then) or by a lower validity of its account when it came (the"
    " gateway does not keep which)"
)


class TextErased(Exception):
    """A retry of a message whose text was erased: refused, as `refused_for_good` refuses one."""


class MailExpired(Exception):
    """A retry of a message that its mail's own expiry (Outlook's "Expires after", `Expiry-Date:`)
    ended, after that date: refused unless the admin insists (`retry_message(ignore_expiry=True)`). A
    retry gives a new validity from now (at least an hour), and an expired "meeting at 10" reminder
    reached the phone in the afternoon without a word to the admin. `at`: the date, epoch seconds."""

    def __init__(self, at: float) -> None:
        super().__init__(at)
        self.at = at

    def said(self, zone: str = "UTC") -> str:
        """Why, naming the date in `zone` (the gateway's `[gateway] timezone`)."""
        when = datetime.fromtimestamp(self.at, ZoneInfo(zone))
        return f"its validity ended at {when:%Y-%m-%d %H:%M %Z}, {SHORTER}"

    def __str__(self) -> str:
        return self.said()


class OptedOut(Exception):
    """A retry of a message to a phone on the opt-out list: the claim would end it again ("the phone
    answered with an opt-out word") and its sender would get a second bounce for one admin click."""

    def __init__(self, number: str, source: str, word: str | None, at: float) -> None:
        super().__init__(number)
        self.number, self.source, self.word, self.at = number, source, word, at

    def said(self, zone: str = "UTC") -> str:
        when = datetime.fromtimestamp(self.at, ZoneInfo(zone))
        by = f"by its answer {self.word!r}" if self.source == "mo" and self.word else "by an admin"
        return (
            f"{self.number} is on the opt-out list since {when:%Y-%m-%d %H:%M %Z} ({by}); if the phone's"
            f" owner asked for SMS again, `smsgw optout remove {self.number}` first"
        )

    def __str__(self) -> str:
        return self.said()


def opted_out_recipient(conn: sqlite3.Connection, message_id: int) -> OptedOut | None:
    """The refusal of a retry of this message, if its phone is on the opt-out list now."""
    row = conn.execute(
        "SELECT o.number, o.source, o.word, o.created_at"
        " FROM messages m JOIN optouts o ON o.number = m.recipient WHERE m.id = ?",
        (message_id,),
    ).fetchone()
    return OptedOut(*row) if row else None


class AccountSuspended(Exception):
    """A retry of a message of a suspended account: its parts would be held again at their claim,
    while the retry said "queued again" and its audit row recorded a retry that sent nothing."""

    def __init__(self, account: str) -> None:
        super().__init__(account)
        self.account = account

    def __str__(self) -> str:
        return (
            f"its account {self.account} is suspended: `smsgw account resume {self.account}` first"
            " (which sends the SMS the suspension held), then retry this one"
        )


def suspended_account(conn: sqlite3.Connection, message_id: int) -> AccountSuspended | None:
    """The refusal of a retry of this message, if its account is suspended now."""
    row = conn.execute(
        "SELECT a.name FROM messages m JOIN accounts a ON a.id = m.account_id"
        " WHERE m.id = ? AND a.suspended_at IS NOT NULL",
        (message_id,),
    ).fetchone()
    return AccountSuspended(row[0]) if row else None
