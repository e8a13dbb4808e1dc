"""Which due parts a claim reads, and in which order it takes them (`QueueRepo.claim_due`).

Two ways to read them, with the same result. A few due parts in all (`FEW_DUE` of a state at most,
as at any moment of a steady flow) are read whole from the queue's due index, one index range per
state in due order, and each account's share is picked from them here: no temporary b-tree, and the
rows the claim hands on come with them, so its update needs no RETURNING. The per-account statements,
the turns' GROUP BY and the RETURNING opened twelve temporary b-trees a claim: a claim of eight SMS
in its transaction cost 1.07 M instructions that way, 0.76 M this way (a claim comes every four
mails or so at a steady flow). More due than that (a backlog, a campaign), and the per-account
statement `_DUE_BY_ACCOUNT` reads about what each account can win, however long the queue.
"""

from __future__ import annotations

import sqlite3

from gateway.store.partnotes import MAYBE_SENT_NOTES, maybe_sent_note

# Due parts an account's claim reads beyond twice its `limit`, to take the oldest of them.
CLAIM_MARGIN = 16
# Due parts of one state read from the due index before the per-account statement takes over.
FEW_DUE = 64
_WAITING = "state IN ('queued', 'deferred')"  # parts_account_due's predicate, repeated where it is used
# The due parts of one state (?3, now ?1) of every account, the ?4 oldest (by id) of its ?2 first
# by due time, in one statement: `w` lists the accounts with parts waiting by skipping through the
# index by account (one seek per account, the parts without an account first), and each one's due
# parts are the start of its range of the same index. A statement per account of the accounts table
# cost 12 ms a claim with 1,000 accounts, most of them with nothing waiting; this costs 0.4 ms with
# 100 of them waiting.
_DUE_BY_ACCOUNT = (
    "WITH RECURSIVE w(a, n) AS (SELECT NULL, 0 UNION ALL"
    " SELECT (SELECT account_id FROM parts INDEXED BY parts_account_due"
    f" WHERE {_WAITING} AND account_id > coalesce(w.a, -9223372036854775808) ORDER BY account_id LIMIT 1),"
    " n + 1 FROM w WHERE w.a IS NOT NULL OR w.n = 0)"
    " SELECT p.id, p.account_id, p.next_attempt_at FROM w, parts p"
    " WHERE (w.a IS NOT NULL OR w.n = 0) AND p.id IN (SELECT id FROM (SELECT id FROM parts"
    f" INDEXED BY parts_account_due WHERE {_WAITING} AND account_id IS w.a AND state = ?3"
    " AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2) ORDER BY id LIMIT ?4)"
)
# What a claimed part is made of (`ClaimedPart`, its attempt not yet counted), the last column its
# `maybe_sent` (bind MAYBE_SENT_NOTES first).
CLAIMED = (
    "id, message_id, seq, attempts, destination, source, data_coding, payload, udh, text, expires_at, via,"
    f" coalesce({maybe_sent_note()}, 0)"
)
# The first due parts of one state by due time, whole, in the due index's order: bind
# MAYBE_SENT_NOTES, then the state, the time now and how many.
_FEW_DUE = (
    f"SELECT account_id, next_attempt_at, {CLAIMED} FROM parts INDEXED BY parts_due"
    f" WHERE state = ?{len(MAYBE_SENT_NOTES) + 1} AND next_attempt_at <= ?{len(MAYBE_SENT_NOTES) + 2}"
    f" ORDER BY next_attempt_at, id LIMIT ?{len(MAYBE_SENT_NOTES) + 3}"
)

# id -> (account, due) of the parts a claim may take
Found = dict[int, tuple[int | None, float]]


def due_parts(
    conn: sqlite3.Connection, now: float, wins: int, many: frozenset[str]
) -> tuple[Found, bool, dict[int, tuple[object, ...]] | None, frozenset[str]]:
    """(id -> (account, due)) of up to `wins` due parts per account and state, whether an account
    may have had more, each of those parts' `CLAIMED` columns when all were read whole (else None),
    and `many` as this look found it.

    Oldest first among twice as many and CLAIM_MARGIN more by due time, so that the oldest of an
    account's due parts are among them also when their due times came out in another order. One state
    at a time: each reads its index range in order and stops at its LIMIT; with both in one IN (...)
    SQLite sorts every due part of the range first. `many`, the states that had more than FEW_DUE due
    at the last look, go straight to the per-account statement."""
    found: Found = {}
    whole: dict[int, tuple[object, ...]] | None = {}
    cut = False
    window = 2 * wins + CLAIM_MARGIN
    for state in ("queued", "deferred"):
        read: dict[int | None, int] = {}
        if state not in many:
            rows = conn.execute(_FEW_DUE, (*MAYBE_SENT_NOTES, state, now, FEW_DUE + 1)).fetchall()
            if len(rows) <= FEW_DUE:
                for row in _oldest_of_each(rows, window, wins):
                    found[row[2]] = (row[0], row[1])
                    read[row[0]] = read.get(row[0], 0) + 1
                    if whole is not None:
                        whole[row[2]] = row[2:]
                cut = cut or wins in read.values()
                continue
            many |= {state}
        whole = None
        for pid, account, due in conn.execute(_DUE_BY_ACCOUNT, (now, window, state, wins)):
            found[pid] = (account, due)
            read[account] = read.get(account, 0) + 1
        cut_here = wins in read.values()
        cut = cut or cut_here
        if not cut_here and sum(read.values()) <= FEW_DUE:
            # No account had `wins` due, so these were all of the state's due parts: few again.
            many -= {state}
    return found, cut, whole, many


def _oldest_of_each(rows: list[tuple[object, ...]], window: int, wins: int) -> list[tuple[object, ...]]:
    """Of rows in due order, each account's `wins` oldest (by id) of its `window` first: what
    `_DUE_BY_ACCOUNT` reads, from every due part of the state."""
    by_account: dict[object, list[tuple[object, ...]]] = {}
    for row in rows:
        mine = by_account.setdefault(row[0], [])
        if len(mine) < window:
            mine.append(row)
    if len(by_account) == 1 and len(rows) <= wins:
        return rows
    taken: list[tuple[object, ...]] = []
    for mine in by_account.values():
        taken += sorted(mine, key=lambda row: row[2])[:wins] if len(mine) > wins else mine
    return taken


def ranked(found: Found, turns: dict[int | None, int], limit: int) -> list[int]:
    """The ids to claim: an account's k-th candidate takes turn k + its parts in flight, and the
    `limit` first turns win (by due time, then id, between accounts). Within an account, oldest first
    among its due parts read (by id, the order they were accepted in), not by due time: a part that
    waited out a link's loss or a throttle goes before the SMS to the same phone accepted after it,
    however their due times came out (put back in two writes a moment apart, a phone got "Message 1,
    3, 2")."""
    taken = dict(turns)
    order = []
    for pid, (account, due) in sorted(found.items()):
        turn = taken[account] = taken.get(account, -1) + 1
        order.append((turn, due, pid))
    return [pid for _turn, _due, pid in sorted(order)[:limit]]
