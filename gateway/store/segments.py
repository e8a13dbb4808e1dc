"""The reassembly of long MOs from their segments, as the SMSC delivers them.

A segment is kept aside (`state = 'segment'`) until its set is complete, or joined with gap
markers once it is too old (each set by its own newest part); only whole texts (`state = 'new'`)
reach the handlers. A set is the segments of one phone to one of our numbers (`TO_KEY`) under one
reference and total; a segment whose place a waiting set holds with another text, or that came
apart from its parts (`PARTS_APART_SECONDS`), starts a set of its own (`_sets`). A segment of
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

import phonenumbers
import structlog

from gateway import reassembly
from gateway.store.redelivery import REPEAT_AFTER_ACK_SECONDS
from gateway.store.repository import Repository

log = structlog.get_logger(__name__)

# Our number a segment was sent to, as one key whichever way the link wrote it: "+48100200300",
# "0048100200300" and "48100200300" are one number (the plan reads a known number into E.164 before
# it is stored, but an unknown one is kept as written; its national form, "100200300", is read by
# `SegmentRepo._to_forms` where a set is looked up). The phone's reference is one octet and some
# phones and modems send every long SMS under the same one: two answers to two of our numbers (two
# companies, each with its own pool number) are two sets, never one.
TO_KEY = (
    "(CASE WHEN destination LIKE '+%' THEN substr(destination, 2)"
    " WHEN destination LIKE '00%' THEN substr(destination, 3) ELSE destination END)"
)


# How far apart the parts of one SMS come when nothing held them: a phone hands them to the SMSC
# back to back and the SMSC delivers them in a row, in any order but a second or two apart even
# while we answer slowly. Within it, a part of a place the newest waiting set has free is its part;
# a person does not write and send the next long SMS that fast. Later, it is that set's part only
# if it continues the set (a place after all it holds): the SMSC delivers in order, and what it
# held (an outage, a restart of the daemon, a retry of a part we could not store) is the rest of
# the sequence, while a new SMS under the reused reference starts again at part 1. Where both carry
# the SMSC's stamp (CIMD2's 060: when the phone sent it), the stamps are compared instead, however
# late the part came. A part that fits neither is a set of its own, mailed at its timeout, as the
# late part of its SMS when it brings only parts that SMS lacked (`SegmentRepo._late_rest_of`).
PARTS_APART_SECONDS = 30.0
# The most segments one key (phone, our number, reference, total) keeps waiting: beyond it, the
# timeout's pass joins its oldest sets early, with gap markers (mailed, not dropped). Twice the
# longest SMS (255 parts): no phone sends that much under one reference within a timeout, but a
# broken one could, and every part that comes reads all those waiting under its key.
MAX_WAITING_SEGMENTS = 512


def to_key(destination: str) -> str:
    """`TO_KEY` of a number in hand."""
    if destination.startswith("+"):
        return destination[1:]
    return destination[2:] if destination.startswith("00") else destination


# Our numbers a phone's segments may be addressed to: those it had SMS from (its conversations) and
# the accounts' senders, as the handlers read an MO's destination first (`conversations.handlers.
# own_number_as_stored`). An SMSC also writes them nationally ("100200300" for +48100200300), which
# `TO_KEY` cannot tell from another number: the two halves of one answer were mailed apart.
_OWN_NUMBERS = (
    "SELECT number FROM conversations WHERE phone = ?"
    " UNION SELECT sender FROM accounts WHERE sender IS NOT NULL"
)


def _national_forms(e164: str) -> tuple[str, ...]:
    """How an SMSC in the number's own country writes it: its national significant number, and with
    the trunk prefix where the country has one (Germany's "0")."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    national = phonenumbers.national_significant_number(parsed)
    meta = phonenumbers.PhoneMetadata.metadata_for_region(
        phonenumbers.region_code_for_country_code(parsed.country_code)
    )
    trunk = meta.national_prefix if meta is not None else None
    return (national, *([trunk + national] if trunk else [])) if national else ()


_stamp = reassembly.stamp_seconds


class _Newest:
    """What `_sets` keeps of the newest set to tell whether a part belongs to it: the places it
    holds (and the last of them), when its last part came, and the span of its stamps (None once a
    part of it has none)."""

    def __init__(self, home: list[tuple]) -> None:
        self.home, self.places, self.top, self.last_at = home, set[int](), 0, float("-inf")
        self.stamps: tuple[float, float] | None = (float("inf"), float("-inf"))

    def add(self, seq: int, at: float, stamp: float | None) -> None:
        self.places.add(seq)
        self.top = max(self.top, seq)
        self.last_at = max(self.last_at, at)
        if self.stamps is not None:
            self.stamps = None if stamp is None else (min(self.stamps[0], stamp), max(self.stamps[1], stamp))

    def takes(self, seq: int, at: float, stamp: float | None, total: int, loose: bool) -> bool:
        """Whether a part of a place this set has free belongs to it (`PARTS_APART_SECONDS`)."""
        if seq in self.places:
            return False
        if stamp is not None and self.stamps is not None:
            low, high = self.stamps
            return low - PARTS_APART_SECONDS <= stamp <= high + PARTS_APART_SECONDS
        # Without stamps, a late part that makes the set whole is the part the SMSC delivered
        # again (a part we could not store, one whose acknowledgement a dropped connection lost):
        # joins parts out of order. Split off, both halves were mailed with gaps, a premium
        # vote's second half went to the fallback address, and a whole SMS billed as failed. At
        # the timeout (`loose`) every free place is taken, as no more parts are coming.
        return (
            loose
            or at - self.last_at <= PARTS_APART_SECONDS
            or seq > self.top
            or len(self.places) + 1 == total
        )


def _again(held: tuple, at: float, stamp: str | None) -> bool:
    """Whether a part of the same place and text as `held` (a waiting row) is the SMSC delivering
    `held` again, as for a part of a set joined already (`SegmentRepo._joined_already`): not when
    the stamps differ, nor once the acknowledgement of `held` was read more than
    `REPEAT_AFTER_ACK_SECONDS` before it came (a modem that sends the same alarm every few minutes
    under one reference sends a new SMS each time; taken for copies, its alarms were never mailed)."""
    held_stamp, acked_at = held[6], held[8]
    if stamp is not None and held_stamp is not None and stamp != held_stamp:
        return False
    return acked_at is None or 0.0 <= at - acked_at <= REPEAT_AFTER_ACK_SECONDS


def _sets(rows: list[tuple], total: int, *, loose: bool = False) -> list[list[tuple]]:
    """The waiting segments of one key (rows of id, seq, text, link, destination, coding, smsc_time,
    received_at, acked_at), in arrival order, split into the SMS they belong to, in one pass (a
    key can hold many: a modem's alarms under one reference, each missing a part).

    A copy of a part a set holds (same place and text, `_again`) is that set's. A part whose place
    the newest set has free joins it when it came with that set's parts, continues them
    (`PARTS_APART_SECONDS`), makes it whole, or `loose` (the timeout's pass). Any other part starts
    a new set: the phone reused the reference (one octet, constant on some devices). Joined to an
    older set by a free place alone, the first half of a new SMS was mailed with the second half
    of one whose first part was lost. Without the SMSC's stamps, a new SMS's first part that makes
    a waiting set whole is still taken for that set's late part: the two cannot be told apart, and
    a part delivered again is the likelier (every SMSC retries; a part lost outright is rare)."""
    sets: list[list[tuple]] = []
    held: dict[tuple[int, str], tuple[list[tuple], tuple]] = {}  # the latest row of each place and text
    newest: _Newest | None = None
    for row in rows:
        seq, text, smsc_time, at = row[1], row[2], row[6], row[7]
        stamp = _stamp(smsc_time)
        copy = held.get((seq, text))
        if copy is not None and _again(copy[1], at, smsc_time):
            home = copy[0]
        elif newest is not None and newest.takes(seq, at, stamp, total, loose):
            home = newest.home
        else:
            sets.append(home := [])
            newest = _Newest(home)
        if newest is not None and home is newest.home:
            newest.add(seq, at, stamp)
        home.append(row)
        held[(seq, text)] = (home, row)
    return sets


class SegmentRepo(Repository):
    def _to_forms(self, source: str, destination: str) -> tuple[str, ...]:
        """Every form the SMSC may have written our number `destination` in on this phone's
        segments: `TO_KEY`'s three ("+48100200300", "0048100200300", "48100200300") and, when it is
        one of the phone's own numbers (`_OWN_NUMBERS`), its national forms ("100200300"). A
        national form two of those numbers share (+48100200300 and +49100200300) names neither."""
        key = to_key(destination)
        owners: dict[str, set[str]] = {}  # a national form → the keys of the own numbers it writes
        keys: set[str] = set()
        for (number,) in self.conn.execute(_OWN_NUMBERS, (source,)):
            if not (number and number.startswith("+") and number[1:].isdigit()):
                continue  # an alphanumeric sender: no phone answers to it
            keys.add(number[1:])
            for form in _national_forms(number):
                owners.setdefault(form, set()).add(number[1:])
        if key not in keys and len(found := owners.get(destination, set())) == 1:
            key = next(iter(found))  # written nationally
        national = sorted(form for form, found in owners.items() if found == {key})
        return tuple(dict.fromkeys((destination, key, f"+{key}", f"00{key}", *national)))

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
        forms = self._to_forms(source, destination)
        row = self.conn.execute(
            "SELECT 1 FROM mo WHERE source = ? AND concat_ref = ? AND concat_total = ? AND concat_seq = ?"
            f" AND state = 'joined' AND text = ? AND received_at >= ? AND destination IN ({_marks(forms)})"
            " AND (smsc_time IS NULL OR ? IS NULL OR smsc_time = ?)"
            " AND (acked_at IS NULL OR ? - acked_at BETWEEN 0.0 AND ?) LIMIT 1",
            (source, ref, total, seq, text, now - reassembly.REDELIVERY_SECONDS, *forms,
             smsc_time, smsc_time, now, REPEAT_AFTER_ACK_SECONDS),
        ).fetchone()  # fmt: skip
        return row is not None

    def _join_segments(
        self,
        source: str,
        destination: str,
        ref: int,
        total: int,
        now: float,
        *,
        force: bool,
        older_than: float | None = None,
    ) -> list[int]:
        """Join the waiting sets of (phone, our number, reference, total) that are whole, or, `force`
        (the timeout), with gap markers those whose newest part came at `older_than` or before (all,
        without it), and the oldest beyond `MAX_WAITING_SEGMENTS`; returns the whole texts written.

        Each set times out by its own newest part: by the key's, a phone that keeps sending
        incomplete SMS under one reference held every one of them back for as long as it did.
        A part whose place a waiting set holds with another text is no copy of it: the phone sent
        another SMS under the same reference (see `_sets`). It waits as a set of its own and is
        joined with that one, never consumed unseen by the first."""
        forms = self._to_forms(source, destination)
        rows = self.conn.execute(
            "SELECT id, concat_seq, text, link, destination, data_coding, smsc_time, received_at, acked_at"
            " FROM mo WHERE state = 'segment' AND source = ? AND concat_ref = ? AND concat_total = ?"
            f" AND destination IN ({_marks(forms)}) ORDER BY id",
            (source, ref, total, *forms),
        ).fetchall()
        sets = _sets(rows, total, loose=force)
        if not force:  # a new part goes to the newest set: only that one can have become whole
            sets = sets[-1:] if sets and reassembly.complete([(r[1], r[2]) for r in sets[-1]], total) else []
        else:
            sets = _due(sets, older_than, len(rows))
        return [self._join_set(source, ref, total, rows, now, force=force) for rows in sets]

    def _join_set(
        self, source: str, ref: int, total: int, rows: list[tuple], now: float, *, force: bool
    ) -> int:
        segments = [(seq, text) for _id, seq, text, *_ in rows]
        _id, _seq, _text, link, destination, coding, *_ = rows[0]
        # The earliest stamp stands for the SMS whatever order its segments came in, on each copy.
        stamps = [r[6] for r in rows]
        smsc_time = None if None in stamps else min(stamps)
        seqs = {seq for seq, _ in segments if 1 <= seq <= total}
        complete = len(seqs) == total
        parts_at = min(r[7] for r in rows)
        follows = (
            None
            if complete
            else self._late_rest_of(source, destination, ref, total, seqs, parts_at, smsc_time)
        )
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
        assert cur.lastrowid is not None
        log.info(
            "mo.reassembled",
            mo=cur.lastrowid,  # never the number: the line outlives `smsgw phone forget`
            parts=total,
            complete=complete,
            **({"follows": follows, "late_parts": len(seqs)} if follows else {}),
        )
        return cur.lastrowid

    def _late_rest_of(
        self,
        source: str,
        destination: str,
        ref: int,
        total: int,
        seqs: set[int],
        parts_at: float,
        smsc_time: str | None,
    ) -> int | None:
        """The first whole text of the incomplete SMS that `seqs` (a set joined by the timeout, its
        first part come at `parts_at`) completes in part, or None: the latest one of this phone,
        number and reference joined at most the redelivery window before these parts came, when
        they are all among those it still lacks.

        The window ends when the late parts came, not at their join: that comes a timeout after
        them, and with `[replies] reassembly_timeout_seconds` at a day (allowed) the window was
        gone before any late part was joined; it went out as a new answer, perhaps to a colleague
        who texted the phone since, instead of following its SMS.

        Where both carry the SMSC's stamp (`smsc_time`, the earliest of their parts'), stamps more
        than `PARTS_APART_SECONDS` apart are two SMS: the phone sent the late parts with the others."""
        forms = self._to_forms(source, destination)
        row = self.conn.execute(
            "SELECT id, COALESCE(follows, id), smsc_time FROM mo INDEXED BY mo_incomplete WHERE source = ?"
            " AND concat_ref = ? AND concat_total = ? AND seqs IS NOT NULL"
            f" AND destination IN ({_marks(forms)}) AND received_at >= ?"
            " ORDER BY id DESC LIMIT 1",
            (source, ref, total, *forms, parts_at - reassembly.REDELIVERY_SECONDS),
        ).fetchone()
        if row is None:
            return None
        mine, theirs = _stamp(smsc_time), _stamp(row[2])
        if mine is not None and theirs is not None and abs(mine - theirs) > PARTS_APART_SECONDS:
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
        came since `older_than`: the timeout counts from a set's newest part, as a set still
        arriving is not stale. (The housekeeping also holds it back for a timeout after the
        daemon's start.) A key holding more than `MAX_WAITING_SEGMENTS` has its oldest sets joined
        early."""
        now = self.clock()
        joined = []
        with self.transaction():
            keys = self.conn.execute(
                "SELECT source, MIN(destination), concat_ref, concat_total FROM mo WHERE state = 'segment'"
                f" GROUP BY source, concat_ref, concat_total, {TO_KEY}"
                " HAVING MIN(received_at) <= ? OR COUNT(*) > ?",
                (older_than, MAX_WAITING_SEGMENTS),
            ).fetchall()
            for source, destination, ref, total in keys:
                joined += self._join_segments(
                    source, destination, ref, total, now, force=True, older_than=older_than
                )
        return joined


def _marks(values: tuple[str, ...]) -> str:
    return ",".join("?" * len(values))


def _due(sets: list[list[tuple]], older_than: float | None, waiting: int) -> list[list[tuple]]:
    """The sets of one key the timeout joins: those whose newest part came at `older_than` or before
    (every one, without it), and, oldest first, any but the newest while more than
    `MAX_WAITING_SEGMENTS` would still wait."""
    due = []
    for i, rows in enumerate(sets):
        stale = older_than is None or max(r[7] for r in rows) <= older_than
        if stale or (waiting > MAX_WAITING_SEGMENTS and i < len(sets) - 1):
            due.append(rows)
            waiting -= len(rows)
    return due
