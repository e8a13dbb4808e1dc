"""The MO repository: inbound SMS as they come, and what becomes of them once handled.

An MO is stored as it comes (`record_mo`). A segment of a long text waits for the rest of its set
(`gateway.store.segments`); only whole texts (`state = 'new'`) reach the handlers, which ask
whether one is the SMSC delivering an earlier copy again (`gateway.store.redelivery`) and which
parts of the phone's SMS it holds (`gateway.store.moparts`). `MoRepo` is all of these, one
repository (`store.mo`) over the one table.

A text read with the default GSM tables in place of national ones the phone named (`reassembly.unread`)
is stored as read, and that it was so in its note (`alphabet_note`) until it is handled: its mail
says it, and the handlers' note takes its place. In the text, a STOP was no opt-out word, and a
premium SMS of a password alone was billed and listed with the line as its message.
"""

from __future__ import annotations

import structlog

from gateway import reassembly
from gateway.store.clockstep import ClockStep
from gateway.store.counted import keep_counted
from gateway.store.moparts import MoPartsRepo, whole_parts
from gateway.store.redelivery import RESENT, RedeliveryRepo
from gateway.store.segments import SegmentRepo

log = structlog.get_logger(__name__)

_AGAIN = "a segment of a text already joined, delivered again by the SMSC"


class MoRepo(SegmentRepo, RedeliveryRepo, MoPartsRepo):
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
        resent: bool = False,
        smsc_time: str | None = None,
        protocol: str | None = None,
    ) -> int | None:
        """Store an MO; a segment of a long text is kept aside until its set is complete.

        Returns the id of the row that holds a whole text (`state = 'new'`), or None while a long
        text still waits for segments. `rows` gets the id of every row this delivery wrote (the
        whole text it completed too): those its acknowledgement stands for (`mark_acked`).
        `smsc_time` is the SMSC's stamp of the SMS as it wrote it (see `gateway.store.redelivery`), as
        `repeated` and `resent` are the link's word on it (kept in `repeated`: 1, and `RESENT`);
        `protocol` the type of the link it came by ("smpp", "cimd2"), kept on the row: the link may be
        renamed, removed or change protocol before the month is billed. A whole text is counted here
        (`moparts.whole_parts`), with the protocol its DCS was read by, so that the month's billing
        reads its parts without its text.
        """
        now = self.clock()
        written = rows if rows is not None else []
        whole = not concat or concat[1] <= 1
        # A segment keeps its markers for the join (`SegmentRepo._join_set` reads them there).
        text, unread = reassembly.unread(text) if whole else (text, None)
        with self.transaction():
            if (
                concat
                and concat[1] > 1
                and self._joined_already(
                    source,
                    destination,
                    concat,
                    text,
                    now,
                    smsc_time,
                    resent=resent,
                    retry_from=self._retry_from,
                )
            ):
                cur = self.conn.execute(
                    "INSERT INTO mo (link, source, destination, text, data_coding, concat_ref, concat_total,"
                    " concat_seq, state, note, received_at, smsc_time, protocol)"
                    " VALUES (?,?,?,?,?,?,?,?,'duplicate',?,?,?,?)",
                    (link, source, destination, text, data_coding, *concat, _AGAIN, now, smsc_time, protocol),
                )
                assert cur.lastrowid is not None
                written.append(cur.lastrowid)
                # The row, not the number (the line outlives `smsgw phone forget`): `smsgw mo list`.
                log.info("mo.segment_again", mo=cur.lastrowid, parts=concat[1], seq=concat[2])
                return None
            cur = self.conn.execute(
                "INSERT INTO mo (link, source, destination, text, data_coding, concat_ref, concat_total,"
                " concat_seq, state, received_at, repeated, smsc_time, note, protocol, parts)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    link,
                    source,
                    destination,
                    text,
                    data_coding,
                    *(concat or (None, None, None)),
                    "new" if whole else "segment",
                    now,
                    RESENT if resent else int(repeated),
                    smsc_time,
                    unread,
                    protocol,
                    whole_parts(text, data_coding, protocol, smsc_time) if whole else None,
                ),
            )
            assert cur.lastrowid is not None
            written.append(cur.lastrowid)
            if whole:
                return cur.lastrowid
            wholes = self._join_segments(source, destination, concat[0], concat[1], now, force=False)
            written.extend(wholes)
            return wholes[0] if wholes else None

    def moved_over(self, step: ClockStep, at: float) -> bool:
        """Whether a move of `step` (`stepchunks.mo_chunk`) carries an MO's time (its receipt, or its
        first part's) from `at` or later to before it: a billed month's end, which the MO then falls back
        into (`billing_reports.rebill`). Asked before the move, in its write: the recent MOs and the
        segments each searched by their index (as one search, SQLite walked every older MO)."""
        back, args = step.back_by("mo", "id")
        first, floor = self.moving(step)[1]
        crossing = " OR ".join(f"({t} >= ? AND {t} - ({back}) < ?)" for t in ("received_at", "parts_at"))
        crosses = (at, *args, at, at, *args, at)
        row = self.conn.execute(
            f"SELECT 1 FROM mo INDEXED BY mo_received WHERE received_at >= ? AND id < ? AND ({crossing})"
            f" UNION ALL SELECT 1 FROM mo INDEXED BY mo_state WHERE state = 'segment' AND id < ?"
            f" AND ({crossing}) LIMIT 1",
            (floor, first, *crosses, first, *crosses),
        ).fetchone()
        return row is not None

    def moving(self, step: ClockStep) -> tuple[str, tuple[float, ...]]:
        """The rows a step moves (SQL and its arguments): those written before it that a window
        can still reach, and segments waiting to be joined. Also the votes' (`gateway.premium.clockstep`)."""
        before = self.clock() + step.seconds  # the clock's reading without the step
        reach = reassembly.REDELIVERY_SECONDS + step.seconds
        return "id < ? AND (received_at >= ? OR state = 'segment')", (step.first("mo"), before - reach)

    def answer_refused(self, mo_id: int, state: str, said: str) -> None:
        """A mail with the MO's answer was refused for good: `state` is what became of it instead
        (`fallback`, a copy went to the fallback address; `failed`, it reached nobody), and `said`
        is added to its note. Only an MO that counts as mailed (`mailed`, `fallback`, `optout`)
        moves, a premium SMS stays premium, its note telling the rest. An opt-out (STOP) is an answer
        mailed as any other: left `optout`, it read as mailed on the Answers page and was billed
        `delivered` while an ordinary answer whose mail was refused turned `fallback` and was billed
        `failed`. Its note still says the phone opted out, and the opt-out list holds the number.

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
        moves = before in ("mailed", "fallback", "optout") and before != state
        with self.transaction():
            self.conn.execute(
                "UPDATE mo SET state = ?, note = ? WHERE id = ?", (state if moves else before, note, mo_id)
            )
            if moves:
                keep_counted(self.conn, "mo", "SELECT '', ?, 1", (before,))

    def mark_failed(self, mo_id: int, note: str) -> None:
        """Its handling failed: kept for a person to look at (`smsgw mo`), not handed back to the SMSC."""
        self.conn.execute("UPDATE mo SET state = 'failed', note = ? WHERE id = ?", (note, mo_id))

    def mo_text(self, mo_id: int) -> tuple[str, str, str | None]:
        """Source, text and note of an MO: a whole MO's note, until it is handled, names national
        tables its text was not read with (`reassembly.alphabet_note` words it for the mail)."""
        row = self.conn.execute("SELECT source, text, note FROM mo WHERE id = ?", (mo_id,)).fetchone()
        return row[0], row[1], row[2]
