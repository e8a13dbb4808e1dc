"""The reply pool (R-3.2): which of our numbers a (user, phone) conversation is sent from, and
whether a number was given to two companies' conversations with one phone.

Two users never share a number for a phone while both conversations live, and a conversation
lives for the reply window after its SMS went, which for an SMS held for quiet hours or an outage
is later than its mail came (`_live`). Runs in the acceptance write (`choose_number`) and in the
MO's (`sharing`); `shared_with` tells `conversation list` and the panel of a shared number too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import lru_cache

from gateway.configfeatures import expand_pool
from gateway.conversations import reached
from gateway.conversations.numbers import normalise
from gateway.conversations.rows import COLUMNS as _COLUMNS
from gateway.conversations.rows import LIVE, SINCE, Choice, Conversation
from gateway.store.repository import Repository


@lru_cache(maxsize=8)
def e164_pool(entries: tuple[str, ...], region: str) -> tuple[str, ...]:
    """The pool as answers name its numbers; once per config, not per mail (a pool may be hundreds)."""
    return tuple(normalise(n, region) for n in expand_pool(entries))


@lru_cache(maxsize=8)
def pool_set(entries: tuple[str, ...], region: str) -> frozenset[str]:
    """The pool for looking up the number an MO names: a pool may hold 100 000 numbers."""
    return frozenset(e164_pool(entries, region))


class ReplyPool(Repository):
    def choose_number(
        self,
        phone: str,
        user_email: str,
        pool: tuple[str, ...],
        now: float,
        window: float,
        account_id: int | None = None,
        *,
        region: str,
    ) -> Choice:
        """R-3.2: the pool number for (user, phone); two users never share one for a phone in the window.

        The user's own number is kept while nobody else holds it for this phone. Otherwise the
        free number least recently used with this phone is taken (a late answer to someone else's
        old conversation is then least likely to reach the wrong person); with none free, the
        least recently active other conversation with this phone that holds a number (the newest
        on it: an older one was displaced already) gives it up, one of the user's own account
        (`account_id`) first, on a number no other company shares before one that is shared: an
        answer meant for a colleague stays in the company. Taken from another account, its answers
        while both live go to the fallback address (`sharing`), not to the other company.
        """
        # The others' conversations with the phone that may be live and the user's own (live or
        # not), in one read; which of the others are live, by when their SMS went (`_live`).
        others: list[tuple[Conversation, float]] = []
        own: Conversation | None = None
        for r in self.conn.execute(
            f"SELECT {_COLUMNS}, {SINCE} FROM conversations WHERE phone = ? AND (user_email = ? OR {LIVE})"
            " ORDER BY last_mt_at",
            (now, window, phone, user_email, now - reached.HOLD_SECONDS, window),
        ):
            if r[3].casefold() == user_email.casefold():  # the column is NOCASE: so is "own"
                own = Conversation(*r[:-1])
            else:
                others.append((Conversation(*r[:-1]), float(r[-1])))
        live = _live(self.conn, phone, others, now, region)
        # Only the newest conversation on a number holds it: an answer on it goes to whoever texted
        # the phone from it last (`match`). Counted as holders, the older ones, displaced already,
        # gave "their" number up again: taken from the newest, whose answers then went to the next
        # user, while the holders of the other numbers were never moved.
        current: dict[str, Conversation] = {}
        for c in live:  # oldest first: the newest on each number stays
            current[c.number] = c
        taken = set(current)
        # The user's own number stays theirs when the others on it are colleagues whose conversations
        # it displaced: nobody texted the phone from it since, and no other company shares it.
        if own is not None and own.number in pool:
            on_it = [c for c in live if c.number == own.number]
            if all(c.last_mt_at < own.last_mt_at and c.account_id == account_id for c in on_it):
                return Choice(own.number)
        free = [n for n in pool if n not in taken]
        if free:
            last_used = dict(
                self.conn.execute(
                    "SELECT number, MAX(last_mt_at) FROM conversations WHERE phone = ? GROUP BY number",
                    (phone,),
                ).fetchall()
            )
            return Choice(min(free, key=lambda n: (last_used.get(n, 0.0), pool.index(n))))
        held = sorted((c for c in current.values() if c.number in pool), key=lambda c: c.last_mt_at)
        # A colleague's number that no other company shares yet comes first: one already shared
        # sends this user's answers to the fallback address too (`sharing`), though a number held
        # by their own account alone was there to take. Shared by any live conversation on it, the
        # displaced ones too: `sharing` counts those.
        holders: dict[str, set[int | None]] = {}
        for c in live:
            holders.setdefault(c.number, set()).add(c.account_id)
        colleagues = [c for c in held if c.account_id == account_id]
        victim = next((c for c in colleagues if holders[c.number] == {account_id}), None)
        victim = victim or next(iter(colleagues), None) or next(iter(held), None)
        if victim is None:  # nobody holds a pool number: the pool is empty
            raise ValueError("empty reply pool")
        return Choice(victim.number, displaced=victim)

    def sharing(self, conv: Conversation, at: float, window: float, region: str) -> list[str]:
        """The users of other accounts than `conv`'s whose conversations with its phone on its
        number were live at `at` too: a pool number given to a second company (`choose_number`
        with the pool exhausted), whose answers cannot be told apart."""
        return sorted(c.user_email for c in shared_with(self.conn, conv, at, window, region))


def shared_with(
    conn: sqlite3.Connection, conv: Conversation, at: float, window: float, region: str
) -> list[Conversation]:
    """`ReplyPool.sharing`'s conversations, on any connection: the panel reads it on its reader thread.

    Of another account by the SMS of theirs that last reached the phone, as `conv` is by the SMS it
    answers (`reached.quoting`); by the row only where that is not known. The row's account is the
    user's latest mail's, whose SMS may be held yet: a user moved here from the other company, who
    texted the phone again, hid that company's SMS the phone had got, and the answer went to this
    account's user as if the number were its alone."""
    reach = at - reached.HOLD_SECONDS  # live by when its SMS went, perhaps (`_live`)
    rows = conn.execute(
        f"SELECT {_COLUMNS}, {SINCE} FROM conversations WHERE phone = ? AND number = ? AND id != ?"
        f" AND {LIVE}",
        (at, window, conv.phone, conv.number, conv.id, reach, window),
    )
    others = {c.id: (c, since) for c, since in ((Conversation(*r[:-1]), float(r[-1])) for r in rows)}
    live = _live(conn, conv.phone, list(others.values()), at, region)
    if not live:
        return []
    start = min(others[c.id][1] for c in live) - reached.HOLD_SECONDS
    scan = reached.messages_to(conn, conv.phone, start, at, sorted({c.user_email for c in live}))

    by_user = _by_user(scan)

    def account(c: Conversation) -> int | None:
        # Its SMS's account where one went within its window; an older one (its user's former
        # company, a window long closed) says nothing of who holds the number now: the row, then.
        since = others[c.id][1]
        last = reached.last_reached(c, since, by_user(c), region)
        went = isinstance(last, reached.Sent) and last.sent_at is not None and last.sent_at >= since
        return last.account_id if went else c.account_id

    return [c for c in live if account(c) != conv.account_id]


def _live(
    conn: sqlite3.Connection, phone: str, candidates: list[tuple[Conversation, float]], at: float, region: str
) -> list[Conversation]:
    """Of conversations with `phone` (each with its window's start), those live at `at`: whose
    mail came within the window, or before it while an SMS of theirs reached the phone within
    it (R-3 counts the window from the SMS: one held for quiet hours or an outage went later
    than its mail came). Only those before their window are looked up, in one scan.

    One the scan cannot tell of (it stopped at its bounds on a phone that gets thousands of SMS)
    counts as live: taken for free, its number went to another company's user, and the phone's
    answer to its SMS with it; kept, the worst is an answer to the fallback address."""
    live = [c for c, since in candidates if c.last_mt_at >= since]
    held = [(c, since) for c, since in candidates if c.last_mt_at < since]
    if not held:
        return live
    users = sorted({c.user_email for c, _ in held})
    start = min(since for _, since in held) - reached.HOLD_SECONDS
    scan = reached.messages_to(conn, phone, start, at, users)
    by_user = _by_user(scan)
    for c, since in held:
        last = reached.last_reached(c, since, by_user(c), region)
        if last is None and scan.full:
            live.append(c)
        elif isinstance(last, reached.Sent) and last.sent_at is not None and last.sent_at >= since:
            live.append(c)
    return sorted(live, key=lambda c: c.last_mt_at)


def _by_user(scan: reached.Scan) -> Callable[[Conversation], reached.Scan]:
    """A conversation's own user's SMS of `scan`: each reading all of them, 2,000 conversations took
    96 ms of the acceptance write (and as long of an answer's)."""
    users: dict[str, list[reached.Sent]] = {}
    for sent in scan.sent:
        users.setdefault(sent.user_email.casefold(), []).append(sent)
    return lambda c: reached.Scan(users.get(c.user_email.casefold(), []), scan.full)
