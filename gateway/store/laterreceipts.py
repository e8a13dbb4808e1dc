"""Final receipts for a part that has ended already: a repeat of the one that ended it, or one that
contradicts it. Each is its part's, logged as such (`dlr.repeated`, `dlr.later_receipt` in
`ReportsRepo.record_report`), never `dlr.unmatched` with the hints of a receipt that names no SMS.

A repeat comes soon (the SMSC sends it again when our answer to it was lost), so it is looked for
within `early_dlr_max_age`. A contradicting receipt may come as late as any receipt may after its
submit (`LATER_RECEIPT_AGE`): looked for within the early bound, one 11 minutes after the first was
`dlr.unmatched` again. A part that took the id of a copy accepted late after it had ended
(`gateway.store.latecopies`) no longer has the id of the copy whose receipt ended it: that id is
kept here a while (`took_late_id`), so that a repeat of that receipt is still found to be its.
"""

from __future__ import annotations

from collections import OrderedDict

from gateway.store.settling import SettlingRepo

# Seconds after its part ended that a contradicting receipt is still said to be its: as long as the
# gateway waits for any receipt (`gateway.store.queue.RECEIPT_WAIT_SECONDS`; that module builds on this).
LATER_RECEIPT_AGE = 24 * 3600.0
# Ids given up by parts that took a late copy's id, remembered for their receipts' repeats: such parts
# are rare (a submit unanswered, re-sent and ended, then answered after all), so a few suffice.
GIVEN_UP_KEPT = 256


class LaterReceipts(SettlingRepo):
    # Seconds an unmatched receipt may wait for the submit answer that names its id (`ReportsRepo`).
    early_dlr_max_age: float = 600.0
    # (link, SMSC id) a part gave up for a late copy's -> (part, when), oldest first (`took_late_id`).
    _given_up: OrderedDict[tuple[str, str], tuple[int, float]] | None = None

    def took_late_id(self, link: str | None, smsc_id: str | None, part_id: int, now: float) -> None:
        """The part's receipt under `smsc_id` on `link` came before it took another id: its repeats
        are still the part's (in memory: after a restart a repeat is unmatched, as before)."""
        if link is None or smsc_id is None:
            return
        if self._given_up is None:
            self._given_up = OrderedDict()
        self._given_up[(link, smsc_id)] = (part_id, now)
        while len(self._given_up) > GIVEN_UP_KEPT:
            self._given_up.popitem(last=False)

    def _repeated(self, links: tuple[str, ...], smsc_id: str, status: str, now: float, digits: str | None,
                  same: bool = True) -> int | None:  # fmt: skip
        """The part a final report repeats: one with that id (to the phone it names, as
        `record_report` matches), ended by a report of that same status within
        `early_dlr_max_age`, or one that gave that id up since (`took_late_id`). SMSCs send a report
        again when our answer to it was lost (the connection dropped first). Stored unmatched, the
        repeat was logged `dlr.unmatched` and, as the receipt of an SMS whose submit answer it
        overtook, settled a newer SMS given the same id. Not `same`: the part a report of another
        status ended within `LATER_RECEIPT_AGE` (it stands; this one stays unmatched)."""
        state = "delivered" if status == "delivered" else "failed"
        states = (state, state) if same else ("delivered", "failed")
        said = "d.status = ?" if same else "d.status NOT IN (?, 'pending')"
        since = now - (self.early_dlr_max_age if same else max(self.early_dlr_max_age, LATER_RECEIPT_AGE))
        row = self.conn.execute(
            "SELECT p.id FROM parts p JOIN messages m ON m.id = p.message_id"
            f" WHERE p.link IN ({','.join('?' * len(links))}) AND p.smsc_id = ? AND p.state IN (?, ?)"
            f" AND p.done_at >= ? AND EXISTS (SELECT 1 FROM dlrs d WHERE d.part_id = p.id AND {said})"
            " AND (? IS NULL OR substr(m.recipient, -?) = ? OR substr(m.source, -?) = ?)"
            " ORDER BY p.done_at DESC LIMIT 1",
            (*links, smsc_id, *states, since, status, digits, len(digits or ""),
             digits, len(digits or ""), digits),
        ).fetchone()  # fmt: skip
        if row is not None:
            return int(row[0])
        return self._gave_up(links, smsc_id, status, now) if same and self._given_up else None

    def _gave_up(self, links: tuple[str, ...], smsc_id: str, status: str, now: float) -> int | None:
        """The part that gave `smsc_id` up for a late copy's, its receipt of `status` stored with it."""
        assert self._given_up is not None
        for link in links:
            found = self._given_up.get((link, smsc_id))
            if found is None or found[1] < now - self.early_dlr_max_age:
                continue
            row = self.conn.execute(
                "SELECT 1 FROM dlrs WHERE part_id = ? AND link = ? AND smsc_id = ? AND status = ?",
                (found[0], link, smsc_id, status),
            ).fetchone()
            if row is not None:
                return found[0]
        return None
