"""The conversations' rows as the repositories read them, and the SQL that says which are live.

Shared by `gateway.conversations.repo` (rows, MO side) and `gateway.conversations.pool` (the
reply-number choice), which both read conversations by these columns and windows.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.store.forwardsteps import stepped_since


def _since(table: str) -> str:
    """The start of the reply window (R-3) of the conversation row `table`: its account's window, or
    the installation's when the account has none, back from the first parameter ("now"); the second
    parameter is the installation's window in seconds. A window counts the time that passed: a step
    forward of the clock within it is not (`forwardsteps.stepped_since`)."""
    account = f"SELECT a.reply_window_days * 86400 FROM accounts a WHERE a.id = {table}.account_id"
    return stepped_since(f"? - COALESCE(({account}), ?)")


SINCE = _since("conversations")
C_SINCE = _since("c")  # the same, of the joined row `c`
# A conversation whose mail came within its window (with "now" earlier by `reached.HOLD_SECONDS`:
# one that may be live by when its SMS went, `ReplyPool._live`).
LIVE = f"last_mt_at >= {SINCE}"
# One whose mail came within the widest reply window of the accounts of the (phone, number)'s rows, or
# the installation's if wider (the parameters as `SINCE`'s, then the phone and the number):
# `ConversationsRepo.match` judges each by its own window, and one past it may still hold the SMS the
# phone got last. Only those rows' accounts (on the phone's index): the widest of all accounts read
# every account for each MO on the event loop (20,000 accounts: 2-3 ms a statement).
WIDEST = "last_mt_at >= " + stepped_since(
    "? - MAX(?, COALESCE((SELECT MAX(a.reply_window_days) FROM conversations w"
    " JOIN accounts a ON a.id = w.account_id WHERE w.phone = ? AND w.number = ?), 0) * 86400)"
)

# The note each answer a mail of kept answers carried starts with (`kept.note_of`), then the id of
# the MO that mail names (`outbox.mo_ref`: its first answer), then ")".
KEPT_MAIL_NOTE = "kept past the hourly limit, then mailed with the other kept answers (the mail of MO "


def mail_ref(mo: str) -> str:
    """SQL: the `outbox.mo_ref` of the mails that carry the answer of the MO row `mo`: its own id, or
    for an answer a mail of kept answers carried, its note's first answer's. `mo list` and the
    Answers page read an answer's mail by it: by the answer's own id, the mail's fate (queued behind a
    relay's 450, given up as most likely arrived) was told of its first answer alone, and the others
    read "mailed" all along. CAST takes the digits before the note's ")"."""
    head = len(KEPT_MAIL_NOTE)
    return (
        f"CASE WHEN substr({mo}.note, 1, {head}) = '{KEPT_MAIL_NOTE}'"
        f" THEN CAST(substr({mo}.note, {head + 1}, 20) AS INTEGER) ELSE {mo}.id END"
    )


COLUMNS = (
    "id, phone, number, user_email, account_id, domain, header_message_id, subject, text,"
    " started_at, last_mt_at, refs, name"
)
C_COLUMNS = ", ".join(f"c.{c.strip()}" for c in COLUMNS.split(","))  # the same, of the joined row `c`


@dataclass(frozen=True, slots=True)
class Conversation:
    id: int
    phone: str
    number: str
    user_email: str
    account_id: int | None
    domain: str
    header_message_id: str | None
    subject: str | None
    text: str
    started_at: float
    last_mt_at: float
    refs: str | None = None  # the References of the user's latest mail (`forwarded.thread_refs`)
    name: str | None = None  # what the user's mail called the phone (`forwarded.contact_name`)
    # The user (`users.id`) whose mail brought the SMS the phone answers (`reached.quoting`), 0 when
    # nobody holds that mail any more (its user removed since); None when not read: the row as stored.
    # The row moves on with every mail accepted, before its SMS goes: only this says who sent the
    # SMS an answer is to (`holding.sent_by_holder`), as `account_id` then says on whose account.
    sent_by: int | None = None
    # That SMS's row (`messages.id`), which the MO records (`mo.answered_message_id`): a copy of the
    # answer made later quotes it (`keptrepo.as_recorded`). None: the row as stored, or not known.
    message_id: int | None = None


@dataclass(frozen=True, slots=True)
class Choice:
    """The number a (user, phone) conversation is sent from, and whom it was taken from, if anyone."""

    number: str
    displaced: Conversation | None = None


@dataclass(frozen=True, slots=True)
class Mo:
    id: int
    link: str
    source: str
    destination: str
    text: str
    received_at: float
    concat_total: int | None
    parts_at: float | None = None  # when the first part of a long text came (`MoRepo._join_segments`)
