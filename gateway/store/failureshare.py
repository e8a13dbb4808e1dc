"""R-2.4's window: how many of an account's last finished messages failed, read without sorting them.

The window is the account's newest `last` settled messages since its last resume: delivered, failed
by an SMSC (a part it refused or reported failed), and expired with a part an SMSC took. R-2.4 judges
failed deliveries: an SMS that expired before any SMSC took it says nothing of the account's numbers
(the links were down), nor does one the gateway ended before it went, its phone having said STOP (or
an admin put the number on the opt-out list) after the mail was accepted, or no link serving its
number any more: 51 phones of a campaign held for quiet hours that answered STOP suspended their
account for "51 of its last 51 messages failed". Read at every failed SMS (`gateway.notifier`).

It was one statement that merged the newest `last` delivered and failed through a sorter, kept them
in a materialised table and sorted them again with the expired ones: 5.4 M instructions a failed SMS
with 500 finished messages, failures being 1 in 100. Failures are few, so they are read (the newest
`last` of them, each arm a range of `messages_counts`) and the delivered are only counted: the `j`-th
newest failure is in the window when it and the `j - 1` newer failures and the delivered messages
newer than it are `last` at most, which holds for the first few failures and then never again. A
binary search finds how many do, each step one count of at most `last` index entries. The `last`-th
newest delivered (or failed) message is a floor no message of the window is below: the walks for
failures stop there.
"""

from __future__ import annotations

import sqlite3

# One state's messages above :floor (the last resume's message at least), newest first. One lower
# bound, given first: of two, SQLite ends the range at the first and tests the other row by row,
# which walked an account's whole history before its resume. `id > 0` after it lets the planner use
# the partial index `messages_counts` (account, state, id).
_SINCE = (
    "SELECT id FROM messages m WHERE account_id = :account AND state = '{state}'"
    " AND id > :floor AND id > 0{more} ORDER BY id DESC"
)
_TOOK_PART = " AND EXISTS (SELECT 1 FROM parts p WHERE p.message_id = m.id AND p.smsc_id IS NOT NULL)"
# A part that failed at an SMSC's word names its link (`SettlingRepo.end_parts`, a receipt); one the
# gateway ended (opted out, no route) has none.
_REFUSED_PART = (
    " AND EXISTS (SELECT 1 FROM parts p WHERE p.message_id = m.id AND p.state = 'failed'"
    " AND p.link IS NOT NULL)"
)
# The `last`-th newest delivered: no message of the window is older (`last` newer ones were judged).
_LAST_DELIVERED = _SINCE.format(state="delivered", more="") + " LIMIT 1 OFFSET :last - 1"
# The floor keeps this walk, as the expired one's, off the failures no SMSC made.
_FAILED = _SINCE.format(state="failed", more=_REFUSED_PART) + " LIMIT :last"
# Only those an SMSC took a part of; the floor keeps the walk off the many that expired in the queue
# before any SMSC took them (an outage's worth), which are never judged.
_EXPIRED = _SINCE.format(state="expired", more=_TOOK_PART) + " LIMIT :last"
# Delivered messages above :floor, counted up to `last` (more are as many).
_DELIVERED_ABOVE = f"SELECT COUNT(*) FROM ({_SINCE.format(state='delivered', more='')} LIMIT :last)"


def failure_share(conn: sqlite3.Connection, account_id: int, last: int) -> tuple[int, int]:
    """(failed, judged): the failures among the account's newest `last` settled messages since its
    last resume, and how many settled messages that window holds (`last`, or fewer while it has
    not sent as many)."""
    row = conn.execute("SELECT resumed_after_message FROM accounts WHERE id = ?", (account_id,)).fetchone()
    after = int(row[0]) if row is not None and row[0] is not None else 0
    args = {"account": account_id, "last": last, "floor": after}
    oldest = conn.execute(_LAST_DELIVERED, args).fetchone()
    if oldest is not None:
        args["floor"] = max(after, oldest[0] - 1)
    failed = [r[0] for r in conn.execute(_FAILED, args)]
    if len(failed) == last:  # as many failed: no message of the window is older than the last of them
        args["floor"] = max(args["floor"], failed[-1] - 1)
    expired = [r[0] for r in conn.execute(_EXPIRED, args)]
    failures = sorted(failed + expired, reverse=True)[:last]

    def delivered_above(message_id: int) -> int:
        args["floor"] = max(after, message_id)
        return int(conn.execute(_DELIVERED_ABOVE, args).fetchone()[0])

    judged = last if oldest is not None else min(last, delivered_above(after) + len(failures))
    # The newest `found` failures are in the window; is the `j`-th (1-based) one too?
    found, most = 0, len(failures)
    while found < most:
        j = (found + most + 1) // 2
        if j + delivered_above(failures[j - 1]) <= last:
            found = j
        else:
            most = j - 1
    return found, judged
