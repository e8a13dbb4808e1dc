"""Parts of a long SMS that the SMSC delivers again after their set was joined, where no stamp of the
SMSC says so (SMPP's deliver_sm has none; `gateway.store.redelivery`).

A part that repeats, byte for byte, a part joined already under the same phone, number, reference
and total is recorded as a duplicate on arrival while the earlier copy's acknowledgement may not
have reached the SMSC (`SegmentRepo._joined_already`). Later than that it may be the first part of
a device's next SMS under its one reference, the same first part as before and a new rest (an
alarm): it waits as a set of its own. Its set decides at its join, on arrival or at the timeout: a
set whose only parts repeat parts joined already is that SMS delivered again, recorded and dropped
(not mailed, not billed), when their copies came within `AGAIN_SECONDS` before it, their
acknowledgements not known to have been read, or it lacks parts of its own and repeats a text mailed
whole, or its parts carry the SMSC's stamp of their copies to the second (`_copy_again`). Mailed,
it said "[part 2 of 2 missing]" of an SMS mailed whole, or named as
missing a part that had been mailed. A set that
brings any part of its own is a new SMS, as before, but where the parts it brings are the rest a
text joined already lacked (`SegmentRepo._follows`): its copies are dropped and the rest follows.

Which parts repeat a joined one is read when each comes (`mark`): the most recent earlier copy of
the part (same key, place and text, within `reassembly.REDELIVERY_SECONDS`) speaks for it, as the
latest copy does for a whole text. A copy still waiting when it came is no part joined already: a
modem that sends the same incomplete alarm every few minutes has each one mailed, though the one
before was joined by the time this one's set is. The waiting row keeps the answer in its note.

A part delivered again while its set still waits, past the acknowledgement window, starts a set of
its own, and the part after it completes that one: the set left behind, when the parts it holds all
came again within `PARTS_APART_SECONDS` and were joined, is dropped at its timeout the same way
(`repeated_set`). Without the SMSC's stamps (SMPP) a copy cannot be told from the phone's next SMS
under one reference so soon, and the copy is the likelier; with them, only copies the SMSC may deliver
again count (`_its_copy`), also those the link handed up without the stamp: a minute stamp repeats,
and the phone sends a vote whose part was lost again within seconds.
"""

from __future__ import annotations

import sqlite3

import structlog

from gateway import reassembly
from gateway.store.redelivery import DOUBT_SECONDS, RESENT, soon_after_ack, stamped_copy
from gateway.store.segmentsets import PARTS_APART_SECONDS

log = structlog.get_logger(__name__)

# The note of a waiting segment that repeats a part joined already (`mark`).
REPEATS = "repeats a part of a text joined already"
# The note of each segment of a set dropped as a copy, as of one dropped on arrival (`gateway.store.mo`).
AGAIN = "a segment of a text already joined, delivered again by the SMSC"

# Rows of one key's waiting segments, as `SegmentRepo._join_segments` reads them: id, seq, text,
# link, destination, coding, smsc_time, received_at, acked_at, note, repeated.
_ID, _SEQ, _TEXT, _STAMP, _AT, _ACKED, _NOTE = 0, 1, 2, 6, 7, 8, 9

_COPIES = (
    "FROM mo WHERE source = ? AND concat_ref = ? AND concat_total = ? AND concat_seq = ? AND text = ?"
    " AND destination IN ({marks})"
)
_NAMED = _COPIES.replace("FROM mo", "FROM mo INDEXED BY mo_segments", 1)


def _stamps_differ(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a != b


def mark(
    conn: sqlite3.Connection, row: tuple, source: str, forms: tuple[str, ...], ref: int, total: int
) -> tuple:
    """`row`, the part just stored, with its note set when it repeats a part joined already (see
    the module docstring). A copy with another stamp of the SMSC is another SMS's part: not one."""
    marks = ",".join("?" * len(forms))
    copy = conn.execute(
        f"SELECT state, note, smsc_time {_COPIES.format(marks=marks)}"
        " AND id < ? AND received_at >= ? AND state IN ('segment', 'joined') ORDER BY id DESC LIMIT 1",
        (source, ref, total, row[_SEQ], row[_TEXT], *forms, row[_ID],
         row[_AT] - reassembly.REDELIVERY_SECONDS),
    ).fetchone()  # fmt: skip
    if copy is None or _stamps_differ(row[_STAMP], copy[2]):
        return row
    state, note, _stamp = copy
    if state != "joined" and note != REPEATS:
        return row
    conn.execute("UPDATE mo SET note = ? WHERE id = ?", (REPEATS, row[_ID]))
    return (*row[:_NOTE], REPEATS, *row[_NOTE + 1 :])


# How soon after its earlier copies a set of repeated parts is the SMSC delivering them again, whatever
# it repeats, where the copies' acknowledgements are not known to have been read (`acked_at` NULL:
# written late, or the connection ended before the SMSC answered anything after them), as for a whole
# text (`gateway.store.redelivery.DOUBT_SECONDS`). An SMSC that lost the acknowledgements (a connection
# cut after its delivers) delivers again after the reconnect, within seconds to minutes; one that read
# them delivers nothing again but within `REPEAT_AFTER_ACK_SECONDS` of them. A phone that sends the same
# long vote again under its one-octet reference looks the same without a stamp of the SMSC, and a text
# sent again must not be lost: 10 s after acknowledgements the SMSC had read, the phone's second vote
# was dropped, paid by the phone and billed to nobody. Later than this, a set is the SMSC's copy only
# when it lacks parts of its own and repeats a text that was mailed whole: a device sends every part of
# its text (a whole set of repeats later is its next one), and a modem whose alarm lacks its part 2
# every time repeats a text mailed with a gap (for a day, as the mark is, every alarm after the first
# was lost).
AGAIN_SECONDS = DOUBT_SECONDS
# A part repeating a joined one with the SMSC's stamp (060) of it to the second, not to the minute
# (`yymmddhhmm00`, which a minute-stamping SMSC gives the phone's next SMS too), is that part delivered
# again at any time within the redelivery window: the phone's next SMS, a modem's next alarm under its
# one reference included, was taken at another second. Judged by the acknowledgements alone, a part 3
# an SMSC delivered again 3 s after it read our 70 (a node failing over) was mailed a second time as
# "[parts 1-2 of 3 missing] ...", its SMS mailed with its gap already.


def _to_the_second(stamp: str | None) -> bool:
    """Whether an MO's 060 digits (yymmddhhmmss) name a second, not a minute."""
    return stamp is not None and len(stamp) == 12 and stamp.isdigit() and not stamp.endswith("00")


def repeated_set(
    conn: sqlite3.Connection, rows: list[tuple], source: str, forms: tuple[str, ...], ref: int, total: int
) -> bool:
    """Whether the set `rows` brings nothing but parts joined already: each repeats one joined before
    it (`mark`, then `_copy_again`), or came again within `PARTS_APART_SECONDS` after it, that copy
    joined since."""
    marks = ",".join("?" * len(forms))
    whole = len({row[_SEQ] for row in rows}) == total
    for row in rows:
        if row[_NOTE] == REPEATS:
            if not _copy_again(conn, row, source, forms, ref, total, whole=whole):
                return False
            continue
        later = conn.execute(
            f"SELECT smsc_time, received_at, repeated {_COPIES.format(marks=marks)}"
            " AND id > ? AND received_at BETWEEN ? AND ? AND state = 'joined'",
            (source, ref, total, row[_SEQ], row[_TEXT], *forms, row[_ID], row[_AT],
             row[_AT] + PARTS_APART_SECONDS),
        ).fetchall()  # fmt: skip
        if not any(_its_copy(row, *copy) for copy in later):
            return False
    return bool(rows)


def _its_copy(row: tuple, stamp: str | None, at: float, repeated: int) -> bool:
    """Whether a part joined after the waiting `row`, of its place and text, was the SMSC's copy of
    it. With `row` stamped, only with its stamp while `row`'s acknowledgement was not known to have
    been read, `RESENT`, or within `REPEAT_AFTER_ACK_SECONDS` of it, as `segmentsets._again` judged it
    on arrival: the SMSC delivers no part again whose acknowledgement it read, and under a minute stamp
    the phone's next long vote 20 s on, joined whole, had the first vote's waiting part dropped. So
    for one the link handed up without its stamp (`smsc.cimd2.mostamps`: it came under a new packet
    number after the SMSC read the 70 of a copy with that stamp, judged by the acknowledgements): taken
    for a copy whatever became of them, a vote whose part 2 was lost, its part 1 delivered again on the
    next connection and that copy's 70 read, had its waiting part dropped when the phone's next vote
    came 20 s on, one vote of two neither mailed nor charged."""
    if row[_STAMP] is None:
        return True
    same = stamp is None or stamp == row[_STAMP]
    return same and stamped_copy(row[_ACKED], at, repeated == RESENT)


def _copy_again(
    conn: sqlite3.Connection,
    row: tuple,
    source: str,
    forms: tuple[str, ...],
    ref: int,
    total: int,
    *,
    whole: bool,
) -> bool:
    """Whether `row`, a part repeating one joined already, is the SMSC's copy of it (see AGAIN_SECONDS)."""
    marks = ",".join("?" * len(forms))
    copy = conn.execute(
        f"SELECT id, received_at, acked_at, smsc_time {_COPIES.format(marks=marks)}"
        " AND id < ? AND received_at >= ? AND state = 'joined' ORDER BY id DESC LIMIT 1",
        (
            source,
            ref,
            total,
            row[_SEQ],
            row[_TEXT],
            *forms,
            row[_ID],
            row[_AT] - reassembly.REDELIVERY_SECONDS,
        ),
    ).fetchone()
    if copy is None:
        return False
    copy_id, copy_at, acked_at, copy_stamp = copy
    if copy_stamp == row[_STAMP] and _to_the_second(copy_stamp):
        return True  # the SMSC's stamp of that part, to the second: that SMS (`_to_the_second`)
    # A copy of it recorded as delivered again since, whose acknowledgement the SMSC read: the SMSC
    # delivers it no more (`SegmentRepo._joined_already`), however unread the joined one's is.
    # Named: without statistics the planner read `mo_state`, every duplicate of every phone since the copy.
    read = conn.execute(
        f"SELECT MAX(acked_at) {_NAMED.format(marks=marks)}"
        " AND id > ? AND id < ? AND state = 'duplicate'"
        " AND (smsc_time IS NULL OR ? IS NULL OR smsc_time = ?)",
        (source, ref, total, row[_SEQ], row[_TEXT], *forms, copy_id, row[_ID], row[_STAMP], row[_STAMP]),
    ).fetchone()[0]  # fmt: skip
    if read is not None:
        acked_at = read if acked_at is None else max(acked_at, read)
    if acked_at is None and row[_AT] - copy_at <= AGAIN_SECONDS:
        return True
    if acked_at is not None and soon_after_ack(acked_at, row[_AT]):
        return True
    if whole:
        return False
    # The text the copy was joined into, by its parts joined around it (within a timeout of it).
    seqs = conn.execute(
        "SELECT COUNT(DISTINCT concat_seq) FROM mo WHERE source = ? AND concat_ref = ? AND concat_total = ?"
        f" AND destination IN ({marks}) AND state = 'joined' AND received_at BETWEEN ? AND ?",
        (
            source,
            ref,
            total,
            *forms,
            copy_at - reassembly.TIMEOUT_SECONDS,
            copy_at + reassembly.TIMEOUT_SECONDS,
        ),
    ).fetchone()[0]
    return seqs >= total


def split(rows: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """The rows of a set that repeat a part joined already (`mark`), and the others."""
    copies = [r for r in rows if r[_NOTE] == REPEATS]
    return copies, [r for r in rows if r[_NOTE] != REPEATS]


def drop_set(conn: sqlite3.Connection, rows: list[tuple], total: int) -> None:
    """Record a set delivered again as duplicates: the SMS was mailed (and charged) with the set
    these parts repeat."""
    conn.executemany(
        "UPDATE mo SET state = 'duplicate', note = ? WHERE id = ?", [(AGAIN, r[_ID]) for r in rows]
    )
    # The rows, not the number (the line outlives `smsgw phone forget`): `smsgw mo list`.
    log.info("mo.set_again", mo=[r[_ID] for r in rows], parts=total, seqs=sorted({r[_SEQ] for r in rows}))
