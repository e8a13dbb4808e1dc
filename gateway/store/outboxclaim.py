"""Which due mail the outbox worker's next claim takes: the order (the bulk kinds last) and the mail
that must wait though due, so that one recipient or one mail the relay does not answer cannot take
more than one of the worker's send slots.

A relay that never answered the final dot of mail to one address held all (then four) slots for its ten
minutes' wait (RFC 5321 4.5.3.2.6) with four mails to that address, while every other answer and
bounce waited; a restart claimed the same four first again. A claim now takes at most one mail per
recipient address at a time (one already being sent excludes the others), and at most one
"suspect" mail at a time: one whose earlier send the relay took whole without answering, or was
cut off by a stop or crash (`ClaimedMail.maybe_sent`). Apart from `gateway.store.outbox`, which
marks what this picks.

One mail at a time per address made one client's backlog (a TV vote's 50 mails/s to one address,
one mail per vote) leave at 10-15 mails/s over a relay that takes 1,900/s. A recipient whose last
send the relay answered (the worker knows it: `answered`) now has its due mails claimed on up to
`share` slots at once, one mail a slot, each claimed and recorded as it goes; a suspect mail still
goes alone, and a recipient not yet answered gets one slot, so a relay that never answers an
address's dot holds one slot with one mail, as before. Twenty mails a slot, sent in a row and
recorded in one write, were tried: with eight slots they drained one client's 3,000 mails no faster
(108 against 106 mails/s: each send waits on the relay, and the writes of the slots share commits),
and the mails not yet recorded were sent again after a crash, went out over an erasure (their
content read at the claim) and waited behind a held dot for its ten minutes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Container, Mapping

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
# Read off the due range in order (`outbox_due`), no further than SCAN rows: no index leads by the
# recipient, and a recipient with one mail due among 50,000 (a relay back after an outage) read them
# all at each claim, 28 ms of the loop. A look for more is a saving, not a promise: fewer found go.
SCAN = 2000
_MORE = (
    f"SELECT id FROM (SELECT id, rcpt, unanswered, last_error FROM outbox WHERE state = 'queued'"
    f" AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT {SCAN})"
    f" WHERE rcpt = ? AND NOT {SUSPECT} AND id != ? LIMIT ?"
)


def claim_ids(
    conn: sqlite3.Connection,
    now: float,
    limit: int,
    answered: Container[str] = (),
    running: Mapping[str, int] | None = None,
    share: int = 1,
) -> list[int]:
    """Up to `limit` ids of due mail, one a slot: a first mail per recipient (`_first_mails`), and
    for one not suspect to a recipient in `answered`, more of its recipient's due mails that are not
    suspect, in the order they are due, on slots no first mail takes, up to `share` slots counting
    its mails already `running` (recipient -> mails being sent): one slot sent one address's mail at
    the pace of one session, 16 mails/s against a local relay."""
    running = running or {}
    open_rcpts = {r for r, n in running.items() if n < share and r in answered}
    firsts = _first_mails(conn, now, limit, open_rcpts)
    spare = limit - len(firsts)  # slots no first mail takes, for an answered recipient's backlog
    ids: list[int] = []
    for first, rcpt, suspect in firsts:
        ids.append(first)
        more = 0 if suspect or rcpt not in answered else min(spare, share - running.get(rcpt, 0) - 1)
        if more > 0:
            found = [i for (i,) in conn.execute(_MORE, (now, rcpt, RECOVERED_MAIL, first, more))]
            ids += found
            spare -= len(found)
    return ids


def _first_mails(
    conn: sqlite3.Connection, now: float, limit: int, open_rcpts: Container[str] = ()
) -> list[tuple[int, str, bool]]:
    """Up to `limit` ids of due mail, the other kinds first, then the bulk, each by when due: two
    range reads of `outbox_claim` per look (ordered by the bulk flag in one read, SQLite sorted every
    due row at each claim: 2 ms with 10,000 billing mails queued). A look that finds only excluded
    recipients is followed by one that leaves them out in the read itself, so many mails to one
    address cost the next claims a skip over them, not the slots of everyone behind them.
    `open_rcpts`: recipients whose mail being sent leaves them a slot more (`claim_ids`)."""
    active = conn.execute(
        f"SELECT rcpt, {SUSPECT} FROM outbox WHERE state = 'active'", (RECOVERED_MAIL,)
    ).fetchall()
    busy = {rcpt for rcpt, _ in active if rcpt not in open_rcpts}
    suspect_busy = any(suspect for _, suspect in active)
    chosen: list[tuple[int, str, bool]] = []
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
            chosen.append((mail_id, rcpt, bool(suspect)))
            busy.add(rcpt)
            suspect_busy = suspect_busy or bool(suspect)
        if len(rows) < want:
            break  # every due mail was seen
    return chosen
