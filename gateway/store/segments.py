"""The reassembly of long MOs from their segments, as the SMSC delivers them.

A segment is kept aside (`state = 'segment'`) until its set is complete, or joined with gap
markers once it is too old; only whole texts (`state = 'new'`) reach the handlers. A set is the
segments of one phone to one of our numbers (`TO_KEY`) under one reference and total; a segment
whose place a waiting set holds with another text starts a set of its own (`_sets`). A segment of
a set joined already is recorded as a duplicate and goes no further, while the acknowledgement of
the earlier copy is not known to have been read (as for whole texts, `gateway.store.redelivery`).

A part that comes after its set was joined without it (the SMSC held it through an outage) is the
rest of that SMS, not a new one. A whole text joined without some parts keeps which parts it
holds (`seqs`); a set that the timeout joins later, from the same phone to the same number under
the same reference, bringing only parts that SMS still lacked, come within
`reassembly.REDELIVERY_SECONDS` of its join, is its late rest (`follows`: the SMS's first whole
text). The handlers send it where the first one went and charge only its own parts
(`MoPartsRepo.parts`). The decision waits for the timeout: a set that repeats any part the SMS
had, or is complete, is a new SMS under a reused reference, as before.

The SMSC's stamp (`smsc_time`) tells a segment delivered again from a new SMS under a reused
reference as it does for whole texts (`gateway.store.redelivery`).
"""

from __future__ import annotations

import structlog

from gateway import reassembly
from gateway.store.redelivery import REPEAT_AFTER_ACK_SECONDS
from gateway.store.repository import Repository

log = structlog.get_logger(__name__)

# Our number a segment was sent to, as one key whichever way the link wrote it: "+48100200300",
# "0048100200300" and "48100200300" are one number (the plan reads a known number into E.164 before
# it is stored, but an unknown one is kept as written). The phone's reference is one octet and some
# phones and modems send every long SMS under the same one: two answers to two of our numbers (two
# companies, each with its own pool number) are two sets, never one.
TO_KEY = (
    "(CASE WHEN destination LIKE '+%' THEN substr(destination, 2)"
    " WHEN destination LIKE '00%' THEN substr(destination, 3) ELSE destination END)"
)


def to_key(destination: str) -> str:
    """`TO_KEY` of a number in hand."""
    if destination.startswith("+"):
        return destination[1:]
    return destination[2:] if destination.startswith("00") else destination


def _sets(rows: list[tuple]) -> list[list[tuple]]:
    """The waiting segments of one key (rows of id, seq, text, ...), in arrival order, split into the
    SMS they belong to. A copy of a part a set holds (same place, same text) is that set's; a part
    whose place the newest set has free joins it; one whose place it holds with another text starts
    a new set: the phone reused the reference (one octet, constant on some devices). Which of two
    such SMS a part of an unheld place belongs to cannot be told; the newest is the likelier."""
    sets: list[list[tuple]] = []
    for row in rows:
        seq, text = row[1], row[2]
        home = next((s for s in sets if any(r[1] == seq and r[2] == text for r in s)), None)
        if home is None and sets and all(r[1] != seq for r in sets[-1]):
            home = sets[-1]
        if home is None:
            sets.append(home := [])
        home.append(row)
    return sets


class SegmentRepo(Repository):
    def _joined_already(
        self,
        source: str,
        destination: str,
        concat: tuple[int, int, int],
        text: str,
        now: float,
        smsc_time: str | None,
    ) -> bool:
        """Whether the segment is one of a set joined already, delivered again. Under the same
        reference, with another stamp of the SMSC, it is a new SMS from the phone (references
        repeat: one octet), to be joined and charged as such. So is one whose earlier copy's
        acknowledgement the SMSC read more than `REPEAT_AFTER_ACK_SECONDS` before it came, as for a
        whole text (`redelivery_of`): a device that sends every alarm under one reference with the
        same first segment had its next alarm's first part dropped and mailed as a gap."""
        ref, total, seq = concat
        row = self.conn.execute(
            "SELECT 1 FROM mo WHERE source = ? AND concat_ref = ? AND concat_total = ? AND concat_seq = ?"
            f" AND state = 'joined' AND text = ? AND received_at >= ? AND {TO_KEY} = ?"
            " AND (smsc_time IS NULL OR ? IS NULL OR smsc_time = ?)"
            " AND (acked_at IS NULL OR ? - acked_at BETWEEN 0.0 AND ?) LIMIT 1",
            (source, ref, total, seq, text, now - reassembly.REDELIVERY_SECONDS, to_key(destination),
             smsc_time, smsc_time, now, REPEAT_AFTER_ACK_SECONDS),
        ).fetchone()  # fmt: skip
        return row is not None

    def _join_segments(
        self, source: str, destination: str, ref: int, total: int, now: float, *, force: bool
    ) -> list[int]:
        """Join the waiting sets of (phone, our number, reference, total) that are whole, or, `force`
        (the timeout), all of them with gap markers; returns the whole texts written.

        A part whose place a waiting set holds with another text is no copy of it: the phone sent
        another SMS under the same reference (see `_sets`). It waits as a set of its own and is
        joined with that one, never consumed unseen by the first."""
        rows = self.conn.execute(
            "SELECT id, concat_seq, text, link, destination, data_coding, smsc_time, received_at FROM mo"
            " WHERE state = 'segment' AND source = ? AND concat_ref = ? AND concat_total = ?"
            f" AND {TO_KEY} = ? ORDER BY id",
            (source, ref, total, to_key(destination)),
        ).fetchall()
        sets = _sets(rows)
        if not force:  # a new part goes to the newest set: only that one can have become whole
            sets = sets[-1:] if sets and reassembly.complete([(r[1], r[2]) for r in sets[-1]], total) else []
        return [self._join_set(source, ref, total, rows, now, force=force) for rows in sets]

    def _join_set(
        self, source: str, ref: int, total: int, rows: list[tuple], now: float, *, force: bool
    ) -> int:
        segments = [(seq, text) for _id, seq, text, *_ in rows]
        _id, _seq, _text, link, destination, coding, _time, _at = rows[0]
        # The earliest stamp stands for the SMS whatever order its segments came in, on each copy.
        stamps = [r[6] for r in rows]
        smsc_time = None if None in stamps else min(stamps)
        seqs = {seq for seq, _ in segments if 1 <= seq <= total}
        complete = len(seqs) == total
        parts_at = min(r[7] for r in rows)
        follows = None if complete else self._late_rest_of(source, destination, ref, total, seqs, parts_at)
        self.conn.executemany("UPDATE mo SET state = 'joined' WHERE id = ?", [(r[0],) for r in rows])
        # Joined by the timeout, the text answers no delivery of the SMSC: nothing to wait for. A
        # late rest keeps gap markers where the parts mailed before stand: the reader sees which it is.
        # The row is stamped with the join (billing's months go by it); `parts_at` keeps when the
        # phone's answer came, which is what it answers (`conversations.handlers.on_whole_mo`).
        cur = self.conn.execute(
            "INSERT INTO mo (link, source, destination, text, data_coding, concat_ref, concat_total, state,"
            " received_at, acked_at, seqs, follows, smsc_time, parts_at)"
            " VALUES (?,?,?,?,?,?,?,'new',?,?,?,?,?,?)",
            (link, source, destination, reassembly.join(segments, total), coding, ref, total, now,
             now if force else None, None if complete else ",".join(map(str, sorted(seqs))), follows,
             smsc_time, parts_at),
        )  # fmt: skip
        log.info(
            "mo.reassembled",
            source=source,
            parts=total,
            complete=complete,
            **({"follows": follows, "late_parts": len(seqs)} if follows else {}),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _late_rest_of(
        self, source: str, destination: str, ref: int, total: int, seqs: set[int], parts_at: float
    ) -> int | None:
        """The first whole text of the incomplete SMS that `seqs` (a set joined by the timeout, its
        first part come at `parts_at`) completes in part, or None: the latest one of this phone,
        number and reference joined at most the redelivery window before these parts came, when
        they are all among those it still lacks.

        The window ends when the late parts came, not at their join: that comes a timeout after
        them, and with `[replies] reassembly_timeout_seconds` at a day (allowed) the window was
        gone before any late part was joined; it went out as a new answer, perhaps to a colleague
        who texted the phone since, instead of following its SMS."""
        row = self.conn.execute(
            "SELECT id, COALESCE(follows, id) FROM mo INDEXED BY mo_incomplete WHERE source = ?"
            f" AND concat_ref = ? AND concat_total = ? AND seqs IS NOT NULL AND {TO_KEY} = ?"
            " AND received_at >= ?"
            " ORDER BY id DESC LIMIT 1",
            (source, ref, total, to_key(destination), parts_at - reassembly.REDELIVERY_SECONDS),
        ).fetchone()
        if row is None:
            return None
        first = int(row[1])
        had: set[int] = set()
        # By the same key as above (its partial index): `follows` alone has none, and a scan of
        # every MO would hold the store's one writer.
        held_rows = self.conn.execute(
            "SELECT seqs FROM mo WHERE source = ? AND concat_ref = ? AND concat_total = ?"
            " AND seqs IS NOT NULL AND (id = ? OR follows = ?)",
            (source, ref, total, first, first),
        )
        for (held,) in held_rows:
            had.update(int(x) for x in (held or "").split(",") if x)
        return first if seqs and not seqs & had else None

    def join_stale_segments(self, older_than: float) -> list[int]:
        """Incomplete long MOs are joined with gap markers, never dropped, once no part of theirs
        came since `older_than`: the timeout counts from the newest part, as a set still arriving
        is not stale. (The housekeeping also holds it back for a timeout after the daemon's start.)"""
        now = self.clock()
        joined = []
        with self.transaction():
            keys = self.conn.execute(
                "SELECT source, MIN(destination), concat_ref, concat_total FROM mo WHERE state = 'segment'"
                f" GROUP BY source, concat_ref, concat_total, {TO_KEY} HAVING MAX(received_at) <= ?",
                (older_than,),
            ).fetchall()
            for source, destination, ref, total in keys:
                joined += self._join_segments(source, destination, ref, total, now, force=True)
        return joined
