"""Which due mail the outbox worker's next claim takes: the order (the bulk kinds last) and the mail
that must wait though due, so that one recipient or one mail the relay does not answer cannot take
more than one of the worker's send slots.

A relay that never answered the final dot of mail to one address held all four slots for its ten
minutes' wait (RFC 5321 4.5.3.2.6) with four mails to that address, while every other answer and
bounce waited; a restart claimed the same four first again. A claim now takes at most one mail per
recipient address at a time (one already being sent excludes the others), and at most one
"suspect" mail at a time: one whose earlier send the relay took whole without answering, or was
cut off by a stop or crash (`ClaimedMail.maybe_sent`). Apart from `gateway.store.outbox`, which
marks what this picks.
"""

from __future__ import annotations

import sqlite3

# The note of a mail found `active` at a start or a worker restart: its send was cut off, and the
# relay may have taken it before the cut.
RECOVERED_MAIL = "recovered after restart (possible duplicate)"

# Kinds that come by the hundred at once (the monthly billing files, to every company's billing
# addresses): sent after any other mail that is due, so that a phone's answer or a bounce queued
# behind them leaves at the next free slot instead of after the whole run.
# The claim reads each group off the index `outbox_claim` (state, this expression, next_attempt_at),
# whose expression must be written exactly so for SQLite to use it: a new bulk kind needs a
# migration recreating the index (tests/test_outbox_bulk_last.py checks the plan).
BULK_KINDS = ("billing",)
_BULK = f"(kind IN ({', '.join(repr(k) for k in BULK_KINDS)}))"
SUSPECT = "(unanswered > 0 OR last_error IS ?)"  # its parameter: RECOVERED_MAIL
_DUE = (
    f"SELECT id, rcpt, {SUSPECT} AS suspect FROM outbox WHERE state = 'queued' AND {_BULK} = ?"
    " AND next_attempt_at <= ?{} ORDER BY next_attempt_at, id LIMIT ?"
)
# Candidates read per look, for each slot to fill: mail to a recipient already chosen or being sent
# is skipped, and the next look leaves out every recipient seen so far.
LOOK_AHEAD = 4


def claim_ids(conn: sqlite3.Connection, now: float, limit: int) -> list[int]:
    """Up to `limit` ids of due mail, the other kinds first, then the bulk, each by when due: two
    range reads of `outbox_claim` per look (ordered by the bulk flag in one read, SQLite sorted every
    due row at each claim: 2 ms with 10,000 billing mails queued). A look that finds only excluded
    recipients is followed by one that leaves them out in the read itself, so many mails to one
    address cost the next claims a skip over them, not the slots of everyone behind them."""
    active = conn.execute(
        f"SELECT rcpt, {SUSPECT} FROM outbox WHERE state = 'active'", (RECOVERED_MAIL,)
    ).fetchall()
    busy = {rcpt for rcpt, _ in active}
    suspect_busy = any(suspect for _, suspect in active)
    chosen: list[int] = []
    while len(chosen) < limit:
        want = (limit - len(chosen)) * LOOK_AHEAD
        extra = ""
        if busy:
            extra += f" AND rcpt NOT IN ({','.join('?' * len(busy))})"
        if suspect_busy:
            extra += f" AND NOT {SUSPECT}"
        args = (RECOVERED_MAIL, 0, now, *busy, *((RECOVERED_MAIL,) if suspect_busy else ()), want)
        sql = f"SELECT * FROM ({_DUE.format(extra)}) UNION ALL SELECT * FROM ({_DUE.format(extra)}) LIMIT ?"
        rows = conn.execute(sql, (*args, *args[:1], 1, *args[2:], want)).fetchall()
        for mail_id, rcpt, suspect in rows:
            if len(chosen) == limit:
                break
            if rcpt in busy or (suspect and suspect_busy):
                continue
            chosen.append(mail_id)
            busy.add(rcpt)
            suspect_busy = suspect_busy or bool(suspect)
        if len(rows) < want:
            break  # every due mail was seen
    return chosen
