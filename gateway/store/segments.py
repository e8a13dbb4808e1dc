"""The reassembly of long MOs from their segments, as the SMSC delivers them.

A segment is kept aside (`state = 'segment'`) until its set is complete, or joined with gap
markers once it is too old (each set by its own newest part); only whole texts (`state = 'new'`)
reach the handlers. A set is the segments of one phone to one of our numbers (`TO_KEY`) under one
reference and total; a segment whose place a waiting set holds with another text, or that came
apart from its parts (`PARTS_APART_SECONDS`), starts a set of its own (`_sets`, in
`gateway.store.segmentsets`). A segment of a set joined already is recorded as a duplicate and goes
no further while the acknowledgement of the earlier copy is not known to have been read (with the
SMSC's stamp of that copy, however late it comes; as for whole texts, `gateway.store.redelivery`);
later, a set of nothing but such parts is dropped at its join (`gateway.store.segmentrepeats`).

A part that comes after its set was joined without it (the SMSC held it through an outage) is the
rest of that SMS, not a new one. A whole text joined without some parts keeps which parts it
holds (`seqs`); a set that the timeout joins later, from the same phone to the same number under
the same reference, bringing only parts that SMS still lacked, come within
`reassembly.REDELIVERY_SECONDS` of its join, is its late rest (`follows`: the SMS's first whole
text). The handlers send it where the first one went and charge only its own parts
(`MoPartsRepo.parts`). The decision waits for the timeout: a set that repeats any part the SMS
had, or is complete, is a new SMS under a reused reference, as before. The SMSC's stamp
(`smsc_time`) tells a segment delivered again from one of a new SMS under a reused reference.
"""

from __future__ import annotations

from collections.abc import Callable

import phonenumbers
import structlog

from gateway import reassembly
from gateway.store import segmentrepeats, segmentsets
from gateway.store.redelivery import DOUBT_SECONDS, REPEAT_AFTER_ACK_SECONDS, stamped_copy
from gateway.store.repository import Repository
from gateway.store.segmentsets import MAX_WAITING_SEGMENTS, PARTS_APART_SECONDS, _due, _sets, _stamp

__all__ = ["MAX_WAITING_SEGMENTS", "PARTS_APART_SECONDS", "TO_KEY", "SegmentRepo", "_sets", "to_key"]

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
        *,
        resent: bool = False,
        retry_from: Callable[[str, float, float], float],
    ) -> bool:
        """Whether the segment is one of a set joined already, delivered again, as its arrival
        tells. Where both carry the SMSC's stamp, the stamp and the acknowledgements decide
        (`_stamped_again`); another stamp, under the same reference, is a new SMS from the phone
        (references repeat: one octet), to be joined and charged as such. Without a stamp, so is one
        whose earlier copy's acknowledgement the SMSC read more than `REPEAT_AFTER_ACK_SECONDS` before
        it came, for now: a device that sends every alarm under one reference with the same first
        segment had its next alarm's first part dropped and mailed as a gap. Its set decides at its
        join (`gateway.store.segmentrepeats`): nothing but such parts is the SMSC's copy. An unread
        acknowledgement makes it the SMSC's retry only within `DOUBT_SECONDS` of its copy, or of its
        link's bind since (`retry_from`, `RedeliveryRepo._retry_from`), as for a whole text: for a day,
        the same long vote 3 minutes after one whose answers were written late was dropped. A copy
        recorded as delivered again since, its acknowledgement read, ends that doubt: a vote's 70s
        lost with its connection, its copies' read on the next, the phone's next vote under the minute
        stamp (`smsc.cimd2.mostamps` strips it) was dropped as the first one's retry."""
        ref, total, seq = concat
        forms = self._to_forms(source, destination)
        copies = (
            "FROM mo WHERE source = ? AND concat_ref = ? AND concat_total = ? AND concat_seq = ?"
            f" AND text = ? AND received_at >= ? AND destination IN ({_marks(forms)})"
        )
        args = (source, ref, total, seq, text, now - reassembly.REDELIVERY_SECONDS, *forms)
        if smsc_time is not None and self._stamped_again(copies, args, smsc_time, now, resent=resent):
            return True
        mine = f"{copies} AND (smsc_time IS NULL OR ? IS NULL)"  # another stamp: another SMS's part
        recent = f"SELECT 1 {mine} AND state IN ('joined', 'duplicate') AND ? - acked_at BETWEEN 0.0 AND ?"
        if self.conn.execute(recent, (*args, smsc_time, now, REPEAT_AFTER_ACK_SECONDS)).fetchone():
            return True
        doubt = self.conn.execute(  # the newest unread: a later copy's window ends no sooner
            f"SELECT id, link, received_at {mine} AND state = 'joined' AND acked_at IS NULL ORDER BY id DESC",
            (*args, smsc_time),
        ).fetchone()
        if doubt is None or now - retry_from(doubt[1], doubt[2], now) > DOUBT_SECONDS:
            return False
        read = f"SELECT 1 {mine} AND state = 'duplicate' AND id > ? AND acked_at IS NOT NULL LIMIT 1"
        return self.conn.execute(read, (*args, smsc_time, doubt[0])).fetchone() is None

    def _stamped_again(
        self, copies: str, args: tuple[object, ...], smsc_time: str, now: float, *, resent: bool
    ) -> bool:
        """Whether a part with the SMSC's stamp `smsc_time` is the joined part of that stamp delivered
        again (`copies` the key of the part's copies, `args` its values), as for a whole text
        (`redelivery_of`): while the acknowledgement of its latest copy (the joined one, or one
        recorded as delivered again since) is not known to have been read, however late it comes;
        when the link saw the SMSC send that request again (`resent`); or within
        `REPEAT_AFTER_ACK_SECONDS` of that acknowledgement. The SMSC delivers no part again whose
        acknowledgement it read: one stamping to the minute gives the phone's next long vote under its
        one reference the same stamps, and on its next connection (the link's memory of stamps lost
        with the last) both parts were taken for copies, the vote neither mailed nor charged. Such a
        part waits in a set of its own, which decides at its join (`gateway.store.segmentrepeats`)."""
        stamped = f"{copies} AND smsc_time = ?"
        joined = f"SELECT 1 {stamped} AND state = 'joined' LIMIT 1"
        if self.conn.execute(joined, (*args, smsc_time)).fetchone() is None:
            return False
        (acked_at,) = self.conn.execute(
            f"SELECT acked_at {stamped} AND state IN ('joined', 'duplicate') ORDER BY id DESC LIMIT 1",
            (*args, smsc_time),
        ).fetchone()
        return stamped_copy(acked_at, now, resent)

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
        apart: bool = False,
    ) -> list[int]:
        """Join the waiting sets of (phone, our number, reference, total) that are whole, or, `force`
        (the timeout), with gap markers those whose newest part came at `older_than` or before (all,
        without it), and the oldest beyond `MAX_WAITING_SEGMENTS`; returns the whole texts written.

        Each set times out by its own newest part: by the key's, a phone that keeps sending
        incomplete SMS under one reference held every one of them back for as long as it did.
        A part whose place a waiting set holds with another text is no copy of it: the phone sent
        another SMS under the same reference (see `_sets`). It waits as a set of its own and is
        joined with that one, never consumed unseen by the first.

        Without `force`, the part just stored is the key's newest row: whether it repeats a part
        joined already is read now (`segmentrepeats.mark`). A set of nothing but such parts is
        dropped, not joined (`segmentrepeats.repeated_set`). `apart` (a look of the housekeeping,
        `join_sent_apart`) joins every set that is whole once parts sent apart have joined theirs."""
        forms = self._to_forms(source, destination)
        rows = self.conn.execute(
            "SELECT id, concat_seq, text, link, destination, data_coding, smsc_time, received_at, acked_at,"
            " note, repeated FROM mo WHERE state = 'segment' AND source = ? AND concat_ref = ?"
            f" AND concat_total = ? AND destination IN ({_marks(forms)}) ORDER BY id",
            (source, ref, total, *forms),
        ).fetchall()
        if not force and not apart and rows:
            rows[-1] = segmentrepeats.mark(self.conn, rows[-1], source, forms, ref, total)
        sets = _sets(rows, total, loose=force, ripe_before=now - PARTS_APART_SECONDS)
        if force:
            sets = _due(sets, older_than, len(rows))
        else:  # a new part goes to the newest set: only that one can have become whole
            sets = [
                s
                for s in (sets if apart else sets[-1:])
                if reassembly.complete([(r[1], r[2]) for r in s], total)
            ]
        joined = []
        for each in sets:
            if segmentrepeats.repeated_set(self.conn, each, source, forms, ref, total):
                segmentrepeats.drop_set(self.conn, each, total)
                continue
            copies, rest = segmentrepeats.split(each)
            if copies and rest and self._follows(source, ref, total, rest):
                segmentrepeats.drop_set(self.conn, copies, total)  # the rest is the SMS's late rest
                each = rest
            joined.append(self._join_set(source, ref, total, each, now, force=force or apart))
        return joined

    def _follows(self, source: str, ref: int, total: int, rows: list[tuple]) -> bool:
        """Whether `rows`, parts that are no copies, are the late rest of a text joined already: a
        set that waited with copies of that text's parts beside them (the SMSC delivering a part
        again, then the part the text lacked) was mailed as a new SMS, the copied parts twice."""
        seqs = {r[1] for r in rows if 1 <= r[1] <= total}
        if len(seqs) == total:
            return False
        return self._late_rest_of(source, rows[0][4], ref, total, rows) is not None

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
        follows = None if complete else self._late_rest_of(source, destination, ref, total, rows)
        # A part marked as repeating one joined already that is joined after all (a new SMS: an
        # alarm sent again) loses the mark: the panel and `mo list` said it was a copy of one mailed.
        self.conn.executemany(
            "UPDATE mo SET state = 'joined', note = CASE WHEN note = ? THEN NULL ELSE note END WHERE id = ?",
            [(segmentrepeats.REPEATS, r[0]) for r in rows],
        )
        # Joined by the timeout, the text answers no delivery of the SMSC: nothing to wait for. A
        # late rest keeps gap markers where the parts mailed before stand: the reader sees which it is.
        # The row is stamped with the join (billing's months go by it); `parts_at` keeps when the
        # phone's answer came, which is what it answers (`conversations.handlers.on_whole_mo`).
        whole_text = reassembly.join(segments, total, [r[5] for r in rows])  # by each part's own DCS
        cur = self.conn.execute(
            "INSERT INTO mo (link, source, destination, text, data_coding, concat_ref, concat_total, state,"
            " received_at, acked_at, seqs, follows, smsc_time, parts_at, note)"
            " VALUES (?,?,?,?,?,?,?,'new',?,?,?,?,?,?,?)",
            (link, source, destination, whole_text, coding, ref, total, now,
             now if force else None, None if complete else ",".join(map(str, sorted(seqs))), follows,
             smsc_time, parts_at, reassembly.joined_unread(segments)),
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
        self, source: str, destination: str, ref: int, total: int, rows: list[tuple]
    ) -> int | None:
        """The first whole text of the incomplete SMS that the segment `rows` (a set joined by the
        timeout) complete in part, or None: the latest one of this phone,
        number and reference joined at most the redelivery window before these parts came, when
        they are all among those it still lacks.

        The window ends when the late parts came, not at their join: that comes a timeout after
        them, and with `[replies] reassembly_timeout_seconds` at a day (allowed) the window was
        gone before any late part was joined; it went out as a new answer, perhaps to a colleague
        who texted the phone since, instead of following its SMS.

        Where both carry the SMSC's stamps, the late parts are that SMS's as a waiting set takes a
        part (`segmentsets.continues`)."""
        seqs = {r[1] for r in rows if 1 <= r[1] <= total}
        parts_at = min(r[7] for r in rows)
        forms = self._to_forms(source, destination)
        row = self.conn.execute(
            "SELECT id, COALESCE(follows, id), smsc_time, seqs FROM mo INDEXED BY mo_incomplete"
            " WHERE source = ? AND concat_ref = ? AND concat_total = ? AND seqs IS NOT NULL"
            f" AND destination IN ({_marks(forms)}) AND received_at >= ?"
            " ORDER BY id DESC LIMIT 1",
            (source, ref, total, *forms, parts_at - reassembly.REDELIVERY_SECONDS),
        ).fetchone()
        if row is None:
            return None
        first = int(row[1])
        held = self._held(source, forms, ref, total, first)
        if not seqs or seqs & {seq for seq, _ in held}:
            return None
        late = [(r[1], stamp) for r in rows if 1 <= r[1] <= total and (stamp := _stamp(r[6])) is not None]
        sent = [(seq, stamp) for seq, stamp in held if stamp is not None]
        if len(sent) == len(held) and len(late) == sum(1 <= r[1] <= total for r in rows):
            return first if segmentsets.continues(sent, late, total) else None
        return first

    def _held(
        self, source: str, forms: tuple[str, ...], ref: int, total: int, first: int
    ) -> list[tuple[int, float | None]]:
        """The parts the SMS whose first whole text is `first` holds (that text's and its late
        rests'), each with the SMSC's stamp (None where its text has none). A text's own segments,
        joined into it, are those of its places that came from its first part to its join, the
        earliest stamped at or after the text's (its earliest part's): another SMS under the reused
        reference may have come between. A place whose segment is gone (purged) stands at the text's."""
        held: list[tuple[int, float | None]] = []
        # By the same key as `_late_rest_of`'s (its partial index): `follows` alone has none, and a
        # scan of every MO would hold the store's one writer.
        wholes = self.conn.execute(
            "SELECT id, seqs, smsc_time, parts_at, received_at FROM mo WHERE source = ? AND concat_ref = ?"
            " AND concat_total = ? AND seqs IS NOT NULL AND (id = ? OR follows = ?)",
            (source, ref, total, first, first),
        ).fetchall()
        for whole, seqs, smsc_time, parts_at, joined_at in wholes:
            places = {int(x) for x in seqs.split(",") if x}
            if (earliest := _stamp(smsc_time)) is None:
                held += [(seq, None) for seq in places]
                continue
            own: dict[int, float] = {}
            parts = self.conn.execute(
                # Named: without statistics the planner read `mo_state`, every part ever joined.
                "SELECT concat_seq, smsc_time FROM mo INDEXED BY mo_segments WHERE source = ?"
                f" AND concat_ref = ? AND concat_total = ? AND concat_seq IN ({','.join('?' * len(places))})"
                f" AND state = 'joined' AND destination IN ({_marks(forms)}) AND id < ?"
                " AND received_at BETWEEN ? AND ?",
                (source, ref, total, *places, *forms, whole, parts_at, joined_at),
            )
            for seq, stamp in parts:
                if (mine := _stamp(stamp)) is not None and earliest <= mine < own.get(seq, float("inf")):
                    own[seq] = mine
            held += [(seq, own.get(seq, earliest)) for seq in places]
        return held

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

    def join_sent_apart(self) -> list[int]:
        """The long MOs made whole by a part the phone sent apart from the others (by the SMSC's
        stamps, `segmentsets.PARTS_SENT_APART_SECONDS`), joined once no part of its own SMS can
        still come, `PARTS_APART_SECONDS` after it came: taken as it came, part 2 of a new SMS
        under the reused reference made the waiting part 1 of another whole before its own part 1
        came. Only keys whose stamped waiting rows hold every place are read."""
        now = self.clock()
        came_before = now - PARTS_APART_SECONDS
        joined = []
        with self.transaction():
            keys = self.conn.execute(
                "SELECT source, MIN(destination), concat_ref, concat_total FROM mo WHERE state = 'segment'"
                f" AND smsc_time IS NOT NULL GROUP BY source, concat_ref, concat_total, {TO_KEY}"
                " HAVING COUNT(DISTINCT concat_seq) >= concat_total AND MIN(received_at) <= ?",
                (came_before,),
            ).fetchall()
            for source, destination, ref, total in keys:
                joined += self._join_segments(source, destination, ref, total, now, force=False, apart=True)
        return joined


def _marks(values: tuple[str, ...]) -> str:
    return ",".join("?" * len(values))
