"""Whether a whole MO is the SMSC delivering an earlier copy again, and the acknowledgements that decide it.

A whole text identical to an earlier one (same phone, number and text) is the SMSC delivering the
same SMS again when the earlier copy's acknowledgement is not known to have reached the SMSC
(`acked_at` is NULL: a crash before the deliver_sm_resp, its connection ended before the SMSC
answered anything after it, or it was written late) and it comes within `DOUBT_SECONDS` of that copy
or of its link's latest bind since (an SMSC delivers what it holds once the link is up again,
however long the daemon was down), or when it comes within `REPEAT_AFTER_ACK_SECONDS` of a confirmed
acknowledgement. Otherwise the phone sent it again, and paid for it again: a new SMS. An unconfirmed
acknowledgement once stood for a day: 1,178 of 1,500 MOs of a burst had theirs written late, and the
same text from such a phone 3 minutes on was dropped, a premium vote not billed. So is one the link
marked `repeated` a new SMS: it came on the same connection moments after the earlier copy, while
the SMSC was still waiting for our answer to that one, and an SMSC delivers an MO again only once it
has stopped waiting. One the link marked `RESENT` (the same request again, or read while our answer
to the earlier copy was still unwritten) is the SMSC's copy of the most recent earlier one if that
came seconds before (`RESENT_WITHIN_SECONDS`), whatever became of its acknowledgement, unless the
SMSC's stamps below tell the two apart.

Where the SMSC stamps an MO with the time it took it from the phone (`smsc_time`, CIMD2's 060; SMPP's
deliver_sm has no such field), the stamp says which SMS a copy is: the SMSC delivers an SMS again
with the stamp it gave it, and a phone that sends the same text again gets a new one. An identical
text whose stamp no earlier copy has is a new SMS, whatever became of their acknowledgements (the
vote sent again after an acknowledgement lost with its connection is charged again); one with the
stamp of an earlier copy within the day is that copy delivered again while that copy's
acknowledgement is not known to have been read, however late it comes, and when the link saw the
SMSC send that request again (`RESENT`: on CIMD2 the same packet number on the same connection,
before the SMSC's counter can have come round to it, `smsc.cimd2.mostamps`), or within
`REPEAT_AFTER_ACK_SECONDS` of the acknowledgement: an SMSC that sends an MO again after another one
on the same connection still sends the same SMS (its stamp, phone and text), and the timing rules
above would take it for a new one and charge the phone twice. Once the SMSC read our acknowledgement
it delivers that SMS no more, on this connection or the next: an SMSC that stamps to the minute
(`yymmddhhmm00`), or whose clock is stuck, gives the phone's next SMS the same stamp, and the same
vote sent again 20 s on, after the SMSC closed the connection and logged in again, was stored as the
first delivered again, one charge instead of two. A whole text joined from segments carries the
earliest stamp of its segments (none if one lacks it). A segment is judged by its own stamp, against
the segment it repeats, joined or still waiting, the same way: the same stamp is that segment
delivered again while its acknowledgement is not known to have been read, `RESENT`, or within
`REPEAT_AFTER_ACK_SECONDS` of it (`gateway.store.segments`); another is a new SMS under a reused
reference. The acknowledgement of a copy recorded as delivered again speaks as the latest copy's, and
for a text joined from parts, that of its parts delivered again (`_read_since`): they write no whole
row, and their 70s read, the SMSC delivers that SMS no more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway import reassembly
from gateway.store.repository import Repository

if TYPE_CHECKING:
    from gateway.store.db import Db

# After a copy's acknowledgement reached the SMSC (it answered a request written after it on the
# same connection), an identical MO is a new SMS, except this soon after that acknowledgement: an
# SMSC that stopped waiting for it (its own timeout, on another bind of the same account) may have
# sent the MO again just before. A repeat on the same connection arrives before the answer that
# confirms, so it needs no window; a person cannot send the same SMS twice within 2 s, and two
# identical votes 3 s apart are two SMS the phone paid for.
REPEAT_AFTER_ACK_SECONDS = 2.0
# How long after an MO whose acknowledgement may not have reached the SMSC (or after the first bind of
# its link since) an identical one is the SMSC's retry: SMSCs wait seconds for a deliver_sm_resp
# (10 to 60 commonly, protocols.md) and retry within a minute or two; a link that was down gets what
# the SMSC held as soon as it binds.
DOUBT_SECONDS = 120.0
# `mo.repeated` of a copy the link saw the SMSC re-send on the connection that brought the one before it
# (the same sequence number, or read while our answer to that one was unwritten: `smsc.mocopies`): the
# same SMS whatever became of the earlier copy's acknowledgement; 1 is a new SMS (`repeated`), 0 unsaid.
RESENT = -1
# How long after the earlier copy a `RESENT` one may come to be its copy: the link marks one only
# within `smsc.mocopies.ACK_LATE_SECONDS` (5 s) of the copy read before it, by the loop's time; the
# margin is for each copy's write behind a busy loop (answers 13 s late in a flood). An older identical
# copy is not the one the link saw (that one's write failed): the rules above judge it.
RESENT_WITHIN_SECONDS = 20.0


def soon_after_ack(acked_at: float, at: float) -> bool:
    """Whether a copy that came at `at` came within `REPEAT_AFTER_ACK_SECONDS` after the acknowledgement
    the SMSC read at `acked_at`. One that came before it (the clock stepped back in between, before the
    step was seen) is no late repeat of the SMSC but a new SMS, and must not be dropped, nor its vote
    left unpaid."""
    return 0.0 <= at - acked_at <= REPEAT_AFTER_ACK_SECONDS


def stamped_copy(acked_at: float | None, at: float, resent: bool) -> bool:
    """Whether an MO or a part that came at `at` with the SMSC's stamp of an earlier copy (whose
    acknowledgement the SMSC last read at `acked_at`, None if not known to have been read) is that copy
    delivered again (see the module docstring): the one rule for whole texts, parts joined and parts
    waiting, which once differed in the clock stepped back."""
    return resent or acked_at is None or soon_after_ack(acked_at, at)


# Whole rows (not segments of a long text, nor a segment recorded as delivered again).
_WHOLE = "state NOT IN ('segment', 'joined') AND (concat_seq IS NULL OR COALESCE(concat_total, 1) <= 1)"
# The condition of the index `mo_texts` (migration 63), which a query must name to be read by it; every
# row has a text, and only this lookup says so, so that the listings by phone keep to `mo_copies`.
_BY_TEXT = f"text IS NOT NULL AND {_WHOLE}"


class RedeliveryRepo(Repository):
    def __init__(self, db: Db, clock: Callable[[], float]) -> None:
        super().__init__(db, clock)
        # When each link last went down and last came up, by the store's clock (`link_state`); the
        # daemon's start counts as a fall of each: what it had not confirmed before may be lost with it.
        self._started = clock()
        self._links: dict[str, tuple[float, float | None]] = {}

    def link_state(self, link: str, *, up: bool, at: float) -> None:
        """`link` came up (bound) or went down at `at`: the SMSC keeps the MOs whose acknowledgement it
        missed for the next bind and delivers them then, however long after (`DOUBT_SECONDS`)."""
        down, bound = self._links.get(link, (self._started, None))
        if up:
            self._links[link] = (down, at)
        elif bound is not None and bound >= down:  # was up: down from now
            self._links[link] = (at, bound)

    def _retry_from(self, link: str, copy_at: float, at: float, here: str | None = None) -> float:
        """From when the SMSC's retry of an MO received on `link` at `copy_at`, its acknowledgement
        unconfirmed, may come: then, if its link stayed up since; if it went down since, its bind
        after that (or now, the copy `at` read with the bind before the link said it was up). A copy
        read on another bind of the account (`here`) while `link` is still down is the SMSC's retry
        after its fall, not a bind of it to come: from the fall, or the same vote all day is dropped."""
        down, bound = self._links.get(link, (self._started, None))
        if down < copy_at:
            return copy_at
        if bound is not None and bound >= down:
            return bound
        return at if here is None or here == link else down

    def mark_acked(self, mo_ids: list[int], at: float) -> None:
        """The SMSC read the acknowledgement of the delivery that wrote these rows, sent at `at`."""
        with self.transaction():
            self.conn.executemany(
                "UPDATE mo SET acked_at = ? WHERE id = ? AND acked_at IS NULL", [(at, i) for i in mo_ids]
            )

    def redelivery_of(self, mo_id: int) -> int | None:
        """The earlier copy of the same SMS when the whole MO `mo_id` is the SMSC delivering it again
        (see the module docstring), else None: a new SMS, however like an earlier one it is.

        Read by the indexes of the phone's texts and stamps (migration 63), not by every MO of the
        phone's day: 15,000 from one phone cost 19 ms a lookup, twice an MO, on the event loop."""
        link, source, destination, text, received_at, repeated, smsc_time, note = self.conn.execute(
            "SELECT link, source, destination, text, received_at, repeated, smsc_time, note"
            " FROM mo WHERE id = ?",
            (mo_id,),
        ).fetchone()
        since = received_at - reassembly.REDELIVERY_SECONDS
        before = _as_stored_by_0_2_25(text, note)
        if smsc_time is not None:
            # Stamped by the SMSC: a copy with the same stamp is this SMS, even behind a new SMS of the
            # same text, and even one `repeated` marks (that mark judges by the time between copies),
            # unless the SMSC read that copy's acknowledgement (see the module docstring).
            # By the phone's stamps (`+` keeps the planner off the other indexes): one phone has few
            # SMS in a second, while its texts may be a flood of one word.
            same = self.conn.execute(
                "SELECT id, acked_at FROM mo WHERE source = ? AND smsc_time = ? AND +destination = ?"
                f" AND +text IN (?, ?) AND received_at >= ? AND id < ? AND {_WHOLE} ORDER BY id DESC LIMIT 1",
                (source, smsc_time, destination, text, before, since, mo_id),
            ).fetchone()
            if same is not None:
                copy, acked_at = same
                acked_at = self._read_since(copy, acked_at, mo_id)
                if stamped_copy(acked_at, received_at, repeated == RESENT):
                    return int(copy)
                return None  # its stamp given again: the phone's next SMS, paid for
        if repeated > 0:  # see `smsc.mocopies`: the SMSC was still waiting on the earlier one
            return None
        # The most recent earlier copy speaks for the SMS: once one copy's acknowledgement reached
        # the SMSC, it has stopped delivering it. One text at a time, newest first in the index, its
        # time judged here: asked in SQL, a phone's day without that text read back through every
        # older copy of it (21,000 of one word: some 130,000 steps) to find none.
        rows = [
            self.conn.execute(
                "SELECT id, acked_at, smsc_time, received_at, link FROM mo"
                " WHERE source = ? AND destination = ? AND text = ?"
                f" AND id < ? AND {_BY_TEXT} ORDER BY id DESC LIMIT 1",
                (source, destination, form, mo_id),
            ).fetchone()
            for form in dict.fromkeys((text, before))
        ]
        row = max((r for r in rows if r is not None and r[3] >= since), default=None)
        if row is None or (smsc_time is not None and row[2] is not None):
            # No copy, or stamped copies none of which has this stamp: the phone sent it again, even
            # one the link marked `RESENT`: CIMD2 numbers no request, so that mark is only a second
            # identical MO read while our answer was unwritten, and the stamp is the better evidence
            # (two votes 2 s apart behind a busy loop, the second dropped unpaid).
            return None
        earlier, acked_at, _time, earlier_at, earlier_link = row
        acked_at = self._read_since(earlier, acked_at, mo_id)
        if repeated == RESENT and received_at - earlier_at <= RESENT_WITHIN_SECONDS:
            return int(earlier)  # none when the earlier copy was refused: the SMSC's copy is the SMS
        if acked_at is None:  # the SMSC's retry comes soon after the copy, or after its link's bind
            # The earlier copy's link, not this one's: on several binds of one SMSC account the SMSC
            # retries on whichever is up, and the acknowledgement was lost with the first one's fall.
            from_at = self._retry_from(earlier_link, earlier_at, received_at, link)
            return int(earlier) if received_at - from_at <= DOUBT_SECONDS else None
        return int(earlier) if soon_after_ack(acked_at, received_at) else None

    def _read_since(self, copy: int, acked_at: float | None, mo_id: int) -> float | None:
        """When the SMSC last read an acknowledgement of the SMS of the earlier whole row `copy`
        (`acked_at`, its own): for a text joined from parts, also of those parts delivered again
        after its join, before `mo_id`, and recorded as duplicates (`SegmentRepo._joined_already`),
        which write no whole row. The vote's 70s lost with its connection, the SMSC's copies of its
        parts on the next one acknowledged and read, the phone's next vote of that text minutes
        later was taken for the first one's retry after the bind, neither mailed nor charged."""
        found = self.conn.execute(
            "SELECT source, concat_ref, concat_total, parts_at, received_at FROM mo"
            " WHERE id = ? AND concat_ref IS NOT NULL AND concat_total > 1",
            (copy,),
        ).fetchone()
        if found is None:
            return acked_at
        source, ref, total, parts_at, joined_at = found
        # Its own parts: joined from its first part's arrival to its join, as `SegmentRepo._held` reads.
        # Named: without statistics the planner read `mo_state`, every duplicate of every phone
        # between the two copies (200,000 of other phones: 268 ms a lookup, on the event loop).
        (read,) = self.conn.execute(
            "SELECT MAX(again.acked_at) FROM mo AS again INDEXED BY mo_segments WHERE again.source = ?"
            " AND again.concat_ref = ? AND again.concat_total = ? AND again.state = 'duplicate'"
            " AND again.id > ? AND again.id < ? AND EXISTS (SELECT 1 FROM mo AS own INDEXED BY mo_segments"
            " WHERE own.source = ? AND own.concat_ref = ? AND own.concat_total = ?"
            " AND own.concat_seq = again.concat_seq AND own.text = again.text"
            " AND own.destination = again.destination AND own.state = 'joined' AND own.id < ?"
            " AND own.received_at BETWEEN ? AND ?)",
            (source, ref, total, copy, mo_id, source, ref, total, copy, parts_at, joined_at),
        ).fetchone()
        if read is None:
            return acked_at
        return read if acked_at is None else max(acked_at, read)


def _as_stored_by_0_2_25(text: str, note: str | None) -> str:
    """The text of an MO as 0.2.25 stored it: one read without national tables the phone named
    (`reassembly.unread`) had the line its mail now says after it, in the text itself. A copy stored
    so before an upgrade, its acknowledgement unconfirmed (a crash), is delivered again after it as
    the text alone: the same SMS, not to be mailed, nor its STOP to act, again."""
    said = reassembly.alphabet_note(note)
    if said is None:
        return text
    return f"{text}\n[{said}.]" if text else f"[{said}.]"
