"""The receipts of a part's copies the SMSC accepted late: one taken again meanwhile, one that ended.

A part taken again while its first submit's answer was late has two SMSC ids (`ReportsRepo.second_id`):
a receipt of the copy accepted late that says it failed leaves the part to the other copy's
(`COPY_FAILED_NOTE`), one that says it was delivered settles it (`_copy_report`).

A part whose re-send ended it meanwhile (refused for good, 0x45 from an SMSC that drops a copy it
already has, or taken and reported undelivered) has one copy left that may yet reach the phone: the
one accepted late. Its id and link become the part's, the failure it ended with kept first in its note
(`ENDED_COPY`), and that copy's receipt decides. Dropped, the late answer was logged "the SMSC
answered after the part had been sent again" and its DELIVRD `dlr.unmatched`: the phone had the SMS,
the part stayed failed and its sender, bounced, never heard otherwise. A DELIVRD now makes the part
delivered, and its message once every other part was delivered too; whoever was told of the failure
is told that the SMS reached the phone after all (`Finished.after_failure`), when it does. A failure
leaves it failed, said.
"""

from __future__ import annotations

import structlog

from gateway.store.laterreceipts import LaterReceipts
from gateway.store.records import Finished
from gateway.store.settling import FINAL_PART, TOLD_FAILED, the_rest_said

log = structlog.get_logger(__name__)

# The note of a part one copy of which failed while the other's receipt is still to come.
COPY_FAILED_NOTE = "one copy failed ({}); the receipt of the other is awaited"
# The note of an ended part whose earlier copy the SMSC accepted late: what ended it, then that copy.
ENDED_COPY = "{}; a copy sent earlier was accepted late (link {}, SMSC id {})"
AWAITED = ": its receipt is awaited"
FAILED_TOO = ", and its receipt says it failed too ({})"
ENDED = ("failed", "expired")


class LateCopies(LaterReceipts):
    def _take_early(self, part_id: int, link: str, smsc_id: str, now: float) -> tuple[str, str | None] | None:
        raise NotImplementedError  # `ReportsRepo._take_early`: receipts that overtook the answer

    def ended_copy(self, part_id: int, link: str, smsc_id: str) -> list[Finished] | None:
        """Keep the id of a late acceptance of a part that ended meanwhile (module docstring), and apply
        a receipt of it that overtook the answer. None when the part has not ended."""
        now = self.clock()
        with self.transaction():
            row = self.conn.execute(
                f"SELECT error, link, smsc_id FROM parts WHERE id = ? AND state IN {ENDED}", (part_id,)
            ).fetchone()
            if row is None:
                return None
            self.took_late_id(row[1], row[2], part_id, now)  # its receipt's repeats stay its
            note = ENDED_COPY.format(row[0] or "failed", link, smsc_id)
            self.conn.execute(
                "UPDATE parts SET smsc_id = ?, link = ?, error = ? WHERE id = ?",
                (smsc_id, link, note + AWAITED, part_id),
            )
            early = self._take_early(part_id, link, smsc_id, now)
            if early is None or early[0] == "pending":
                return []
            return self._ended_copy_report(part_id, early[0], early[1], now)

    def _ended_copy_of(self, links: tuple[str, ...], smsc_id: str) -> int | None:
        """The ended part whose copy accepted late got `smsc_id` on one of `links` and has no receipt
        yet (`ended_copy`): for a final receipt no waiting part took."""
        rows = self.conn.execute(
            f"SELECT id, link, error FROM parts WHERE link IN ({','.join('?' * len(links))})"
            f" AND state IN {ENDED} AND smsc_id = ? ORDER BY done_at DESC, id DESC",
            (*links, smsc_id),
        ).fetchall()
        awaited = (part for part, link, note in rows if (note or "").endswith(_awaited(link, smsc_id)))
        return next(awaited, None)

    def _ended_copy_report(self, part_id: int, status: str, error: str | None, now: float) -> list[Finished]:
        """The receipt of an ended part's copy accepted late: delivered, the part is; failed, it stays so.

        Its message, bounced, is delivered and told so to whoever heard of its failure only when every
        part reached the phone. Other parts the failure left unsent keep it failed, its reason saying
        which part arrived after all: it went "cancelled" with no reason, a cancel nobody made, billed
        as such, and the log said the phone had the SMS, half of which was never sent. Another part
        still awaiting its receipt makes it `submitted` again, its reason beginning `TOLD_FAILED`,
        so that its delivery, when it comes, is told to the sender bounced (`_settle_message_of`)."""
        if status != "delivered":
            self.conn.execute(
                "UPDATE parts SET error = substr(error, 1, length(error) - ?) || ? WHERE id = ?",
                (len(AWAITED), FAILED_TOO.format(error or "failed"), part_id),
            )
            return []
        mid, was, account_id, notify, total, seq = self.conn.execute(
            "SELECT m.id, m.state, m.account_id, m.notify, m.parts_total, p.seq FROM messages m JOIN parts p"
            " ON p.message_id = m.id WHERE p.id = ?",
            (part_id,),
        ).fetchone()
        self.conn.execute(
            "UPDATE parts SET state = 'delivered', error = NULL, done_at = ? WHERE id = ?", (now, part_id)
        )
        others = self.conn.execute(
            "SELECT seq, state, error FROM parts WHERE message_id = ? AND id <> ? ORDER BY seq",
            (mid, part_id),
        ).fetchall()
        states = {state for _seq, state, _error in others}
        after = f"part {seq} of {total} delivered after all; {the_rest_said(others)}"
        if was in ENDED and "cancelled" in states and not states & set(ENDED):
            self._restate(mid, f"{TOLD_FAILED}{after}")
            log.warning("dlr.delivered_after_failure", part=part_id, message=mid, was=was, now=was,
                        reason="the receipt of a copy the SMSC accepted late, after the part had ended:"
                        " the phone has this part, but other parts of the SMS were never sent")  # fmt: skip
            return []
        finished = self._settle_message_of(part_id, now)
        (now_state,) = self.conn.execute("SELECT state FROM messages WHERE id = ?", (mid,)).fetchone()
        if was in ENDED and now_state not in FINAL_PART:
            self._restate(mid, f"{TOLD_FAILED}{after}")
        has = (
            "the SMS"
            if now_state == "delivered"
            else "this part; other parts await their receipts"
            if now_state not in FINAL_PART
            else "this part; another part failed too"
        )
        log.warning("dlr.delivered_after_failure", part=part_id, message=mid, was=was, now=now_state,
                    reason="the receipt of a copy the SMSC accepted late, after the part had ended:"
                    f" the phone has {has}")  # fmt: skip
        if finished or was not in ENDED or now_state != "delivered":
            return finished
        return [Finished(mid, "delivered", None, account_id, notify=notify, after_failure=True)]

    def _copy_report(self, part_id: int, state: str, error: str | None, now: float) -> None:
        """The receipt of a part's copy taken late: delivered, the part is; failed, the part waits for
        the receipt of its own id, which settles it."""
        if state == "delivered":
            self._apply_part_report(part_id, "delivered", error, now)
        elif state == "failed":
            note = COPY_FAILED_NOTE.format(error or "failed")
            self.conn.execute(
                "UPDATE parts SET error = ? WHERE id = ? AND state = 'submitted'", (note, part_id)
            )

    def _apply_part_report(self, part_id: int, status: str, error: str | None, now: float) -> None:
        raise NotImplementedError  # `ReportsRepo._apply_part_report`


def _awaited(link: str, smsc_id: str) -> str:
    return ENDED_COPY.format("", link, smsc_id) + AWAITED
