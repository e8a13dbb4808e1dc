"""The MO repository: inbound SMS, and the reassembly of long texts from their segments.

A segment is kept aside (`state = 'segment'`) until its set is complete, or joined with gap
markers once it is too old; only whole texts (`state = 'new'`) reach the handlers. A segment of a
set joined already is recorded as a duplicate and goes no further.
"""

from __future__ import annotations

import structlog

from gateway import reassembly
from gateway.store.repository import Repository

log = structlog.get_logger(__name__)

_AGAIN = "a segment of a text already joined, delivered again by the SMSC"


class MoRepo(Repository):
    def record_mo(
        self,
        link: str,
        source: str,
        destination: str,
        text: str,
        data_coding: int,
        concat: tuple[int, int, int] | None,
    ) -> int | None:
        """Store an MO; a segment of a long text is kept aside until its set is complete.

        Returns the id of the row that holds a whole text (`state = 'new'`), or None while a long
        text still waits for segments.
        """
        now = self.clock()
        with self.transaction():
            if concat and concat[1] > 1 and self._joined_already(source, concat, text, now):
                self.conn.execute(
                    "INSERT INTO mo (link, source, destination, text, data_coding, concat_ref, concat_total,"
                    " concat_seq, state, note, received_at) VALUES (?,?,?,?,?,?,?,?,'duplicate',?,?)",
                    (link, source, destination, text, data_coding, *concat, _AGAIN, now),
                )
                log.info("mo.segment_again", source=source, parts=concat[1], seq=concat[2])
                return None
            cur = self.conn.execute(
                "INSERT INTO mo (link, source, destination, text, data_coding, concat_ref, concat_total,"
                " concat_seq, state, received_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    link,
                    source,
                    destination,
                    text,
                    data_coding,
                    *(concat or (None, None, None)),
                    "segment" if concat and concat[1] > 1 else "new",
                    now,
                ),
            )
            assert cur.lastrowid is not None
            if not concat or concat[1] <= 1:
                return cur.lastrowid
            return self._join_segments(source, concat[0], concat[1], now, force=False)

    def _joined_already(self, source: str, concat: tuple[int, int, int], text: str, now: float) -> bool:
        ref, total, seq = concat
        return (
            self.conn.execute(
                "SELECT 1 FROM mo WHERE source = ? AND concat_ref = ? AND concat_total = ? AND concat_seq = ?"
                " AND state = 'joined' AND text = ? AND received_at >= ? LIMIT 1",
                (source, ref, total, seq, text, now - reassembly.REDELIVERY_SECONDS),
            ).fetchone()
            is not None
        )

    def _join_segments(self, source: str, ref: int, total: int, now: float, *, force: bool) -> int | None:
        rows = self.conn.execute(
            "SELECT id, concat_seq, text, link, destination, data_coding FROM mo WHERE state = 'segment'"
            " AND source = ? AND concat_ref = ? AND concat_total = ? ORDER BY id",
            (source, ref, total),
        ).fetchall()
        segments = [(seq, text) for _id, seq, text, *_ in rows]
        if not rows or not (force or reassembly.complete(segments, total)):
            return None
        _id, _seq, _text, link, destination, coding = rows[0]
        self.conn.executemany("UPDATE mo SET state = 'joined' WHERE id = ?", [(r[0],) for r in rows])
        cur = self.conn.execute(
            "INSERT INTO mo (link, source, destination, text, data_coding, concat_ref, concat_total, state,"
            " received_at) VALUES (?,?,?,?,?,?,?,'new',?)",
            (link, source, destination, reassembly.join(segments, total), coding, ref, total, now),
        )
        log.info("mo.reassembled", source=source, parts=total, complete=reassembly.complete(segments, total))
        return cur.lastrowid

    def join_stale_segments(self, older_than: float) -> list[int]:
        """Incomplete long MOs past the timeout are joined with gap markers, never dropped."""
        now = self.clock()
        joined = []
        with self.transaction():
            keys = self.conn.execute(
                "SELECT DISTINCT source, concat_ref, concat_total FROM mo WHERE state = 'segment'"
                " GROUP BY source, concat_ref, concat_total HAVING MIN(received_at) <= ?",
                (older_than,),
            ).fetchall()
            for source, ref, total in keys:
                mo_id = self._join_segments(source, ref, total, now, force=True)
                if mo_id is not None:
                    joined.append(mo_id)
        return joined

    def mark_failed(self, mo_id: int, note: str) -> None:
        """Its handling failed: kept for a person to look at (`smsgw mo`), not handed back to the SMSC."""
        self.conn.execute("UPDATE mo SET state = 'failed', note = ? WHERE id = ?", (note, mo_id))

    def mo_text(self, mo_id: int) -> tuple[str, str]:
        row = self.conn.execute("SELECT source, text FROM mo WHERE id = ?", (mo_id,)).fetchone()
        return row[0], row[1]
