"""The MO repository: inbound SMS, and the reassembly of long texts from their segments.

A segment is kept aside (`state = 'segment'`) until its set is complete, or joined with gap
markers once it is too old; only whole texts (`state = 'new'`) reach the handlers. A set is the
segments of one phone to one of our numbers (`TO_KEY`) under one reference and total; a segment
whose place a waiting set holds with another text starts a set of its own (`_sets`). A segment of
a set joined already is recorded as a duplicate and goes no further, while the acknowledgement of
the earlier copy is not known to have been read (as for whole texts, below).

A part that comes after its set was joined without it (the SMSC held it through an outage) is the
rest of that SMS, not a new one. A whole text joined without some parts keeps which parts it
holds (`seqs`); a set that the timeout joins later, from the same phone to the same number under
the same reference, bringing only parts that SMS still lacked, come within
`reassembly.REDELIVERY_SECONDS` of its join, is its late rest (`follows`: the SMS's first whole
text). The handlers send it where the first one went and charge only its own parts (`parts`). The decision
waits for the timeout: a set that repeats any part the SMS had, or is complete, is a new SMS under
a reused reference, as before.

A whole text identical to an earlier one (same phone, number and text) is the SMSC delivering the
same SMS again when the earlier copy's acknowledgement is not known to have reached the SMSC
(`acked_at` is NULL: a crash before the deliver_sm_resp, or its connection ended before the SMSC
answered anything after it), however long the SMSC took to deliver it again (up to a day, as for
segments), or when it comes within `REPEAT_AFTER_ACK_SECONDS` of that acknowledgement. Otherwise
the phone sent it again, and paid for it again: a new SMS. So is one the link marked `repeated`:
it came on the same connection moments after the earlier copy, while the SMSC was still waiting for
our answer to that one, and an SMSC delivers an MO again only once it has stopped waiting.

Where the SMSC stamps an MO with the time it took it from the phone (`smsc_time`, CIMD2's 060; SMPP's
deliver_sm has no such field), the stamp says which SMS a copy is: the SMSC delivers an SMS again
with the stamp it gave it, and a phone that sends the same text again gets a new one. An identical
text whose stamp no earlier copy has is a new SMS, whatever became of their acknowledgements (the
vote sent again after an acknowledgement lost with its connection is charged again); one with the
stamp of an earlier copy is judged against that copy as above. The stamp has a resolution of a
second, so two identical SMS the phone sent within one share it: the rule above still tells them
apart where it can (`repeated`, an acknowledgement read long before). A whole text joined from
segments carries the earliest stamp of its segments (none if one lacks it), and a segment whose
stamp differs from that of the joined segment it repeats is a new SMS under a reused reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from gateway import reassembly
from gateway.store.clockstep import ClockStep
from gateway.store.counted import keep_counted
from gateway.store.repository import Repository

log = structlog.get_logger(__name__)

_AGAIN = "a segment of a text already joined, delivered again by the SMSC"

# After a copy's acknowledgement reached the SMSC (it answered a request written after it on the
# same connection), an identical MO is a new SMS, except this soon after that acknowledgement: an
# SMSC that stopped waiting for it (its own timeout, on another bind of the same account) may have
# sent the MO again just before. A repeat on the same connection arrives before the answer that
# confirms, so it needs no window; a person cannot send the same SMS twice within 2 s, and two
# identical votes 3 s apart are two SMS the phone paid for.
REPEAT_AFTER_ACK_SECONDS = 2.0
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


# Whole rows (not segments of a long text, nor a segment recorded as delivered again).
_WHOLE = "state NOT IN ('segment', 'joined') AND (concat_seq IS NULL OR COALESCE(concat_total, 1) <= 1)"


@dataclass(frozen=True, slots=True)
class Earlier:
    """The first whole text of an SMS whose late parts a later one holds, and what became of it."""

    id: int
    state: str
    received_at: float
    user_email: str | None  # of the conversation it was mailed to, if any


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


class MoRepo(Repository):
    def record_mo(
        self,
        link: str,
        source: str,
        destination: str,
        text: str,
        data_coding: int,
        concat: tuple[int, int, int] | None,
        rows: list[int] | None = None,
        *,
        repeated: bool = False,
        smsc_time: str | None = None,
    ) -> int | None:
        """Store an MO; a segment of a long text is kept aside until its set is complete.

        Returns the id of the row that holds a whole text (`state = 'new'`), or None while a long
        text still waits for segments. `rows` gets the id of every row this delivery wrote (the
        whole text it completed too): those its acknowledgement stands for (`mark_acked`).
        `smsc_time` is the SMSC's stamp of the SMS as it wrote it (see the module docstring).
        """
        now = self.clock()
        written = rows if rows is not None else []
        with self.transaction():
            if (
                concat
                and concat[1] > 1
                and self._joined_already(source, destination, concat, text, now, smsc_time)
            ):
                cur = self.conn.execute(
                    "INSERT INTO mo (link, source, destination, text, data_coding, concat_ref, concat_total,"
                    " concat_seq, state, note, received_at, smsc_time)"
                    " VALUES (?,?,?,?,?,?,?,?,'duplicate',?,?,?)",
                    (link, source, destination, text, data_coding, *concat, _AGAIN, now, smsc_time),
                )
                assert cur.lastrowid is not None
                written.append(cur.lastrowid)
                log.info("mo.segment_again", source=source, parts=concat[1], seq=concat[2])
                return None
            cur = self.conn.execute(
                "INSERT INTO mo (link, source, destination, text, data_coding, concat_ref, concat_total,"
                " concat_seq, state, received_at, repeated, smsc_time) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    link,
                    source,
                    destination,
                    text,
                    data_coding,
                    *(concat or (None, None, None)),
                    "segment" if concat and concat[1] > 1 else "new",
                    now,
                    int(repeated),
                    smsc_time,
                ),
            )
            assert cur.lastrowid is not None
            written.append(cur.lastrowid)
            if not concat or concat[1] <= 1:
                return cur.lastrowid
            wholes = self._join_segments(source, destination, concat[0], concat[1], now, force=False)
            written.extend(wholes)
            return wholes[0] if wholes else None

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

    def parts(self, mo_id: int) -> int:
        """The parts of the phone's SMS a whole text holds: what the operator charged the phone for
        it. A set joined by the timeout holds fewer than it declared, and a late rest only its own;
        the parts that never came are no one's to pay for."""
        total, seqs = self.conn.execute("SELECT concat_total, seqs FROM mo WHERE id = ?", (mo_id,)).fetchone()
        return len(seqs.split(",")) if seqs else max(int(total or 1), 1)

    def held(self, mo_id: int) -> tuple[int, set[int]] | None:
        """(the parts its SMS declared, those of them a whole MO holds); None once the retention
        purge has deleted it."""
        row = self.conn.execute("SELECT concat_total, seqs FROM mo WHERE id = ?", (mo_id,)).fetchone()
        if row is None:
            return None
        total = max(int(row[0] or 1), 1)
        return total, {int(x) for x in row[1].split(",")} if row[1] else set(range(1, total + 1))

    def followed(self, mo_id: int) -> Earlier | None:
        """The first whole text of the SMS whose late parts the whole text `mo_id` holds, else None:
        the late rest goes where that one went, not where its own gap-marked text would lead."""
        row = self.conn.execute(
            "SELECT m.id, m.state, m.received_at, c.user_email FROM mo l JOIN mo m ON m.id = l.follows"
            " LEFT JOIN conversations c ON c.id = m.conversation_id WHERE l.id = ?",
            (mo_id,),
        ).fetchone()
        return Earlier(*row) if row else None

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

    def mark_acked(self, mo_ids: list[int], at: float) -> None:
        """The SMSC read the acknowledgement of the delivery that wrote these rows, sent at `at`."""
        with self.transaction():
            self.conn.executemany(
                "UPDATE mo SET acked_at = ? WHERE id = ? AND acked_at IS NULL", [(at, i) for i in mo_ids]
            )

    def redelivery_of(self, mo_id: int) -> int | None:
        """The earlier copy of the same SMS when the whole MO `mo_id` is the SMSC delivering it again
        (see the module docstring), else None: a new SMS, however like an earlier one it is."""
        source, destination, text, received_at, repeated, smsc_time = self.conn.execute(
            "SELECT source, destination, text, received_at, repeated, smsc_time FROM mo WHERE id = ?",
            (mo_id,),
        ).fetchone()
        if repeated:  # see `smsc.base.MoAcks.arrived`: the SMSC was still waiting on the earlier one
            return None
        # The most recent earlier copy speaks for the SMS: once one copy's acknowledgement reached
        # the SMSC, it has stopped delivering it.
        copies = (
            "SELECT id, acked_at, smsc_time FROM mo WHERE source = ? AND destination = ? AND received_at >= ?"
            f" AND id < ? AND text = ? AND {_WHOLE}"
        )
        args = (source, destination, received_at - reassembly.REDELIVERY_SECONDS, mo_id, text)
        row = self.conn.execute(f"{copies} ORDER BY id DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        if smsc_time is not None and row[2] is not None and row[2] != smsc_time:
            # Stamped by the SMSC, the copy it delivers again is the one with the same stamp, if any
            # (a new SMS may have come between): without one, the phone sent this text again.
            row = self.conn.execute(
                f"{copies} AND smsc_time = ? ORDER BY id DESC LIMIT 1", (*args, smsc_time)
            ).fetchone()
            if row is None:
                return None
        earlier, acked_at, _time = row
        # Only a copy received after that acknowledgement, and soon after it, is the SMSC's: one
        # stamped before it (the clock stepped back in between, before the step was seen) is no
        # late repeat of the SMSC but a new SMS, and must not be dropped, nor its vote left unpaid.
        if acked_at is None or 0.0 <= received_at - acked_at <= REPEAT_AFTER_ACK_SECONDS:
            return int(earlier)
        return None

    def shift_for_clock_step(self, step: ClockStep) -> int:
        """The wall clock stepped back: the times of recent MOs received before `step` move with
        it, in the same write as the parts' deadlines (`QueueRepo.shift_for_clock_step`).

        MO times are the ends of windows that look back from the clock: the SMSC's redelivery of
        a copy (`redelivery_of`, a day), a segment joined already, the segments waiting to be
        joined, and the hourly mail limit per phone. Left on the old clock after a step back of an
        hour, the last hour's MOs would look an hour younger: the same SMS sent again by the phone
        a minute later would be within 2 s of its copy's acknowledgement (dropped as the SMSC's,
        a vote unpaid), and the hourly limit would count two hours of answers. An MO's times move
        by what the step undoes of the clock it was received on (`ClockStep`, by its id), its
        acknowledgement and its parts' time (`parts_at`) with it, so that they stay as far apart
        as they were; an MO received after the step (before the look that found it) keeps its
        times, and so does an
        acknowledgement stamped after it (it reads before its MO's receipt: an acknowledgement
        goes out after its MO is stored). Only rows those windows can still reach move: older ones
        are history no window reads, and rewriting every row of the table would hold the store's
        one writer for as long. The reach is widened by the step, so that no unmoved row is
        brought back into a window by it. Returns how many rows moved.
        """
        before = self.clock() + step.seconds  # the clock's reading without the step
        reach = reassembly.REDELIVERY_SECONDS + step.seconds
        back, args = step.back_by("mo", "id")
        with self.transaction():
            return self.conn.execute(
                f"UPDATE mo SET received_at = received_at - ({back}), parts_at = parts_at - ({back}),"
                f" acked_at = acked_at"
                f" - (CASE WHEN acked_at >= received_at THEN {back} ELSE 0 END)"
                " WHERE id < ? AND (received_at >= ? OR state = 'segment')",
                (*args, *args, *args, step.first("mo"), before - reach),
            ).rowcount

    def answer_refused(self, mo_id: int, state: str, said: str) -> None:
        """A mail with the MO's answer was refused for good: `state` is what became of it instead
        (`fallback`, a copy went to the fallback address; `failed`, it reached nobody), and `said`
        is added to its note. Only an MO that counts as mailed (`mailed`, `fallback`) moves: an
        opt-out stays one, a premium SMS stays premium, its note telling the rest.

        The state it leaves is added to `purged_counts`, as a purge adds the rows it deletes: the
        `/metrics` counter of MOs mailed would otherwise fall by it, which Prometheus reads as a
        reset (the whole count again as a burst in `rate()`). That counter counts MOs that were
        mailed, this one among them; the new state's counts it too, with what became of it.
        """
        row = self.conn.execute("SELECT state, note FROM mo WHERE id = ?", (mo_id,)).fetchone()
        if row is None:  # deleted by the retention purge since: the mail's log line is all there is
            return
        before, note = row
        note = f"{note}; {said}" if note else said
        moves = before in ("mailed", "fallback") and before != state
        with self.transaction():
            self.conn.execute(
                "UPDATE mo SET state = ?, note = ? WHERE id = ?", (state if moves else before, note, mo_id)
            )
            if moves:
                keep_counted(self.conn, "mo", "SELECT '', ?, 1", (before,))

    def mark_failed(self, mo_id: int, note: str) -> None:
        """Its handling failed: kept for a person to look at (`smsgw mo`), not handed back to the SMSC."""
        self.conn.execute("UPDATE mo SET state = 'failed', note = ? WHERE id = ?", (note, mo_id))

    def mo_text(self, mo_id: int) -> tuple[str, str]:
        row = self.conn.execute("SELECT source, text FROM mo WHERE id = ?", (mo_id,)).fetchone()
        return row[0], row[1]
