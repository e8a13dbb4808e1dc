"""The conversations' reads (and the erasure and the retention purge) that other parts of the gateway
make, on their own connections or in their own writes: the panel's pages, the phone commands of
`gateway.privacy`, the start's domains (`gateway.smtp.domainsserved`), the purge (`gateway.retentionpurge`).

Here, in the package that owns the tables (`conversations`, `kept_phones`), so that the tables' SQL
has one home (ARCHITECTURE.md section 3): a change of them is made and read in one package.
Functions of a connection, no more: importing this module imports nothing of the gateway beyond
the rows' definitions.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.conversations.rows import COLUMNS, SINCE, Conversation, mail_ref

# The domains the conversations name, each with how many and the time of the last SMS sent in one: what a
# start reads to tell a domain taken out of `[gateway] domains` (`gateway.smtp.domainsserved`), which
# runs it through a function of its own, on the daemon's connection or check-config's read-only one.
DOMAINS_NAMED = "SELECT domain, COUNT(*), MAX(last_mt_at) FROM conversations GROUP BY domain ORDER BY domain"


def _dicts(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def account_answers(
    conn: sqlite3.Connection, account_id: int, limit: int, before: tuple[float, int] | None = None
) -> list[dict[str, Any]]:
    """The SMS phones sent in answer to the account's users, newest first: those matched to one of
    its conversations (`mo.account_id`, kept when the MO was matched: the account whose SMS it
    answered, R-5.2), whatever became of them since (mailed, its mail refused and sent to the
    fallback, kept by the hourly limit, an opt-out). An MO matched to nobody, or on a pool number
    two companies shared (which one it answers cannot be told), has no account: the operator's.
    Premium SMS have their own page and no account here. By index mo_billing, in its order, whose
    entries end with the id: `before` (`received_at`, id of the last shown) is one range of it.

    With the latest mail that carries the answer to the company (`mail_state`, `mail_to`,
    `mail_error`, `mail_next`, as `ConversationsRepo.list_mo` reads them for the operator): an
    answer is `mailed` once its mail is queued, and a relay deferring it (451) for days left the
    page saying "mailed to dave@…" while the operator's list said it was not taken yet. Never the
    copy at the operator's fallback address (kinds `…-fallback`): that mail is the operator's."""
    after = "" if before is None else " AND (m.received_at, m.id) < (?, ?)"
    return _dicts(
        conn.execute(
            "SELECT m.id, m.received_at, m.source, m.destination, m.state, m.note, m.text,"
            " c.user_email AS user, m.conversation_id, o.state AS mail_state, o.rcpt AS mail_to,"
            " o.last_error AS mail_error, o.next_attempt_at AS mail_next FROM mo m INDEXED BY mo_billing"
            # Of the answer's own account only: an answer kept past its conversation before
            # migration 39 may name an id SQLite gave since to another company's conversation.
            " LEFT JOIN conversations c ON c.id = m.conversation_id AND c.account_id IS m.account_id"
            f" LEFT JOIN outbox o ON o.id = (SELECT MAX(x.id) FROM outbox x WHERE x.mo_ref = {mail_ref('m')}"
            " AND x.kind NOT LIKE '%-fallback')"
            f" WHERE m.account_id = ? AND m.state NOT IN ('segment', 'joined'){after}"
            " ORDER BY m.received_at DESC, m.id DESC LIMIT ?",
            (account_id, *(before or ()), limit),
        )
    )


def conversations_page(
    conn: sqlite3.Connection,
    account_id: int | None,
    *,
    limit: int,
    before: tuple[float, int] | None = None,
    phone: str | None = None,
) -> list[Conversation]:
    """Newest first, a page at a time by (`last_mt_at`, id) after `before`, as the message search
    pages by id: page 1000 is one index range, as page 1 is. By account through its index
    (`conversations_account`, whose entries end with the id), the operator's by `conversations_age`,
    a phone's through `conversations_user_phone` (its few, sorted)."""
    where, args = ["1"], []
    if account_id is not None:
        where.append("account_id = ?")
        args.append(account_id)
    if phone is not None:
        where.append("phone = ?")
        args.append(phone)
    if before is not None:
        where.append("(last_mt_at, id) < (?, ?)")
        args += [*before]
    sql = f"SELECT {COLUMNS} FROM conversations WHERE {' AND '.join(where)}"
    rows = conn.execute(sql + " ORDER BY last_mt_at DESC, id DESC LIMIT ?", (*args, limit))
    return [Conversation(*r) for r in rows]


def answers_from(phone: str) -> tuple[str, tuple[object, ...]]:
    """The SMS the phone sent (not the parts of one still waiting for the rest), each with the user
    whose conversation it answered (`user`, NULL for none): the query and its arguments, for a
    caller that orders, pages and counts them (`gateway.privacy`). `o` is the MO's row."""
    return (
        "SELECT o.id, o.received_at, o.destination, o.state, o.text, c.user_email AS user FROM mo o"
        " LEFT JOIN conversations c ON c.id = o.conversation_id"
        " WHERE o.source = ? AND o.state <> 'segment'",
        (phone,),
    )


def phone_conversations(conn: sqlite3.Connection, phone: str) -> list[dict[str, Any]]:
    """The phone's conversations, newest first, as `smsgw phone show` lists them."""
    return _dicts(
        conn.execute(
            "SELECT id, number, user_email, subject, started_at, last_mt_at FROM conversations"
            " WHERE phone = ? ORDER BY last_mt_at DESC",
            (phone,),
        )
    )


def kept_state(conn: sqlite3.Connection, source: str) -> int:
    """Whether the phone (`mo.source`) has answers kept past the hourly limit on record: 1 or 0."""
    return int(conn.execute("SELECT COUNT(*) FROM kept_phones WHERE source = ?", (source,)).fetchone()[0])


def forget_phone(conn: sqlite3.Connection, phone: str) -> int:
    """The phone's conversations and its kept-answer state deleted, in the caller's transaction
    (`smsgw phone forget`); how many conversations went.

    An MO keeps no conversation id once its conversation is gone: SQLite gives a deleted highest id
    to the next conversation, another company's (migration 39)."""
    conn.execute(
        "UPDATE mo SET conversation_id = NULL WHERE conversation_id IN"
        " (SELECT id FROM conversations WHERE phone = ?)",
        (phone,),
    )
    gone = conn.execute("DELETE FROM conversations WHERE phone = ?", (phone,)).rowcount
    conn.execute("DELETE FROM kept_phones WHERE source = ?", (phone,))
    return int(gone)


def purge_old(
    conn: sqlite3.Connection, cutoff: float, reply_window: float, after: tuple[float, int], limit: int
) -> tuple[float, int] | None:
    """The retention purge's share (`gateway.store.retention.FeaturePurge`): the next `limit`
    conversations older than the shortest reply window allows (by conversations_age, past `after`);
    those past their own account's window (`reply_window` for one without) go. Returns the cursor
    to go on from, or None at the end of the range.

    The window is the account's, read per row, so it cannot bound an index range itself; the
    shortest of all windows can, and the rows between it and a longer window are kept and passed.
    """
    shortest = conn.execute("SELECT MIN(reply_window_days) * 86400 FROM accounts").fetchone()[0]
    window = reply_window if shortest is None else min(reply_window, shortest)
    seen = conn.execute(
        "SELECT last_mt_at, id FROM conversations WHERE last_mt_at < ? AND (last_mt_at, id) > (?, ?)"
        " ORDER BY last_mt_at, id LIMIT ?",
        (cutoff - window, *after, limit),
    ).fetchall()
    if seen:
        ids = [conversation_id for _, conversation_id in seen]
        # Not one an answer still kept names (mo_conversation): its id would go to the next
        # conversation made, whoever's, and the answer would name that one's user. It goes once the
        # answer has gone, at a later run.
        conn.execute(
            f"DELETE FROM conversations WHERE id IN ({','.join('?' * len(ids))}) AND last_mt_at < {SINCE}"
            " AND NOT EXISTS (SELECT 1 FROM mo INDEXED BY mo_conversation"
            " WHERE mo.conversation_id = conversations.id)",
            (*ids, cutoff, reply_window),
        )
    return (seen[-1][0], seen[-1][1]) if len(seen) == limit else None


def account_holds(conn: sqlite3.Connection, account_id: int) -> list[str]:
    """What of the conversations keeps an account from `account remove` (`gateway.store.accountshares`)."""
    row = conn.execute("SELECT 1 FROM conversations WHERE account_id = ? LIMIT 1", (account_id,)).fetchone()
    return ["conversations"] if row else []
