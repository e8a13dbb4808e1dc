"""A part's acceptance by its SMSC: the write of every submit answered, in time or late
(`SubmittedRepo.mark_submitted`), which `QueueRepo` (gateway/store/queue.py) builds on. Apart from
it, as gateway/store/queue.py had reached the size a module is kept under.
"""

from __future__ import annotations

from functools import cached_property

from gateway.store.records import Finished
from gateway.store.reports import ReportsRepo
from gateway.store.sendlog import SendLog

# A part the SMSC took without a message id can never be matched to a receipt: it stays `submitted`
# with this error until its validity ends, then expires with a bounce telling that delivery is unknown.
UNCONFIRMED = "accepted by the SMSC without a message id, so no delivery report can be matched"
_SUBMITTED = (
    "UPDATE parts SET state = 'submitted', link = ?, smsc_id = ?, submitted_at = ?, error = ? WHERE id = ?"
)


class SubmittedRepo(ReportsRepo):
    sends = cached_property(lambda self: SendLog())  # the order parts went in, for a clock step back

    def mark_submitted(
        self, part_id: int, link: str, smsc_id: str | None, message_id: int | None = None
    ) -> list[Finished]:
        """Record the SMSC's acceptance; applies a DLR that arrived before the submit answer.

        `message_id`, the part's message when the caller holds it (the claimed part does): the
        update then needs no RETURNING, whose result SQLite builds in a temporary b-tree."""
        now = self.clock()
        with self.transaction():
            sql, args = _SUBMITTED, (link, smsc_id, now, None if smsc_id else UNCONFIRMED, part_id)
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
