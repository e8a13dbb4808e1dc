"""Receipts, one a part, from an SMSC that gives every part of a long SMS the same id.

A final receipt settles the parts of its SMS still waiting with its id as well as the oldest one
(`gateway.store.reports`), since an SMSC that numbers a long SMS once may send one receipt for it.
Another sends one a part all the same: its later receipts then found no part waiting, and were stored
unmatched. DELIVRD, DELIVRD, UNDELIV left the SMS "delivered", its third part's failure dropped and the
sender never told. So a later final receipt for that id takes a part that only the first receipt's
spread settled, and a failure that turns a delivered SMS failed is told as the SMS's end again.
"""

from __future__ import annotations

from gateway.store.records import Finished
from gateway.store.settling import SettlingRepo


class ReceiptSpread(SettlingRepo):
    # Seconds after its end within which a part settled by spread still takes its own receipt; the
    # same bound as a receipt's wait for its submit answer (`ReportsRepo.early_dlr_max_age`).
    early_dlr_max_age: float = 600.0

    def _spread_part(
        self, links: tuple[str, ...], smsc_id: str, now: float, digits: str | None
    ) -> int | None:
        """The part a final receipt for `smsc_id` that no waiting part took is the own receipt of: one
        with no receipt of its own, ended within `early_dlr_max_age`, whose SMS has a part given the
        same id on the same link that took one. Of the newest such SMS, the first part in its order:
        an SMSC sends a receipt a part in the order it took them."""
        row = self.conn.execute(
            "SELECT p.id FROM parts p JOIN messages m ON m.id = p.message_id"
            f" WHERE p.link IN ({','.join('?' * len(links))}) AND p.state IN ('delivered', 'failed')"
            " AND p.smsc_id = ? AND p.done_at >= ?"
            " AND NOT EXISTS (SELECT 1 FROM dlrs d WHERE d.part_id = p.id)"
            " AND EXISTS (SELECT 1 FROM parts o JOIN dlrs d ON d.part_id = o.id WHERE o.id != p.id"
            " AND o.message_id = p.message_id AND o.link = p.link AND o.smsc_id = p.smsc_id)"
            " AND (? IS NULL OR substr(m.recipient, -?) = ? OR substr(m.source, -?) = ?)"
            " ORDER BY p.done_at DESC, p.message_id DESC, p.seq LIMIT 1",
            (*links, smsc_id, now - self.early_dlr_max_age, digits, len(digits or ""), digits,
             len(digits or ""), digits),
        ).fetchone()  # fmt: skip
        return None if row is None else int(row[0])

    def _take_spread(self, part_id: int, state: str, error: str | None, now: float) -> list[Finished]:
        """Give the part (`_spread_part`) its own receipt's state, and settle its SMS again. A failure
        of an SMS settled delivered is told, as its end (a bounce): the settling tells only the first
        end of an SMS, and the sender heard "delivered" of an SMS one part of which failed."""
        row = self.conn.execute(
            "SELECT m.state FROM messages m JOIN parts p ON p.message_id = m.id WHERE p.id = ?", (part_id,)
        ).fetchone()
        self.conn.execute(
            "UPDATE parts SET state = ?, error = ?, done_at = ? WHERE id = ?", (state, error, now, part_id)
        )
        finished = self._settle_message_of(part_id, now)
        if finished or row is None or row[0] != "delivered" or state != "failed":
            return finished
        told = self.conn.execute(
            "SELECT m.id, m.state, m.reason, m.account_id, m.notify FROM messages m JOIN parts p"
            " ON p.message_id = m.id WHERE p.id = ?",
            (part_id,),
        ).fetchone()
        if told is None or told[1] != "failed":
            return []
        return [Finished(told[0], told[1], told[2], told[3], notify=told[4])]
