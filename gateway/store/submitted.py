"""A part's acceptance by its SMSC: the write of every submit answered, in time or late
(`SubmittedRepo.mark_submitted`), which `QueueRepo` (gateway/store/queue.py) builds on.

A re-send's acceptance names the link whose earlier submit of the part went unanswered
(`parts.resent_after`, migration 74): the phone may have the SMS twice. Only the log line
`mt.possible_duplicate` and the link's counter said so, while `smsgw queue show` and the panel's
message page said "delivered, attempts 2, link def". Written by the statement that records the
acceptance; a part sent once is written by the statement it always was, the hot path's.
"""

from __future__ import annotations

from functools import cached_property

from gateway.store.records import Finished
from gateway.store.reports import ReportsRepo
from gateway.store.sendlog import SendLog

# A part the SMSC took without a message id can never be matched to a receipt: it stays `submitted`
# with this error until its validity ends, then expires with a bounce telling that delivery is unknown.
UNCONFIRMED = "accepted by the SMSC without a message id, so no delivery report can be matched"
_TAKEN = "UPDATE parts SET state = 'submitted', link = ?, smsc_id = ?, submitted_at = ?, error = ?"
_SUBMITTED = _TAKEN + " WHERE id = ?"
_RESUBMITTED = _TAKEN + ", resent_after = ? WHERE id = ?"  # a re-send's (module docstring)


class SubmittedRepo(ReportsRepo):
    sends = cached_property(lambda self: SendLog())  # the order parts went in, for a clock step back

    def mark_submitted(
        self,
        part_id: int,
        link: str,
        smsc_id: str | None,
        message_id: int | None = None,
        resent_after: str | None = None,
    ) -> list[Finished]:
        """Record the SMSC's acceptance; applies a DLR that arrived before the submit answer.

        `message_id`, the part's message when the caller holds it (the claimed part does): the
        update then needs no RETURNING, whose result SQLite builds in a temporary b-tree.
        `resent_after`, of a part sent again after a submit that went unanswered: that submit's link
        (`gateway.late_answers`; '' for one before a restart), kept on the row (module docstring)."""
        now = self.clock()
        with self.transaction():
            sql, args = _SUBMITTED, (link, smsc_id, now, None if smsc_id else UNCONFIRMED, part_id)
            if resent_after is not None:
                sql, args = _RESUBMITTED, (*args[:-1], resent_after, part_id)
            self.sends.note(part_id)
            if message_id is None:
                row = self.conn.execute(sql + " RETURNING message_id", args).fetchone()
                message_id = row[0] if row is not None else None
            elif self.conn.execute(sql, args).rowcount == 0:
                message_id = None
            early = None  # none for a key another SMS holds too: the reports name neither (`sharedkeys`)
            if smsc_id is not None and not self.shared_key(part_id, link, smsc_id):
                early = self._take_early(part_id, link, smsc_id, now)
            if early is not None:
                self._apply_part_report(part_id, early[0], early[1], now)
                return self._settle_message_of(part_id, now)
            if message_id is not None:
                fast = self._settle_single(message_id, "submitted", now)
                if fast is not None:
                    return fast
            return self._settle_message_of(part_id, now)
