"""A message's state, derived from its parts and reported once, when it becomes final, so that the
sender hears about a long message exactly once (SPEC R-6.3).

`QueueRepo` (gateway/store/queue.py) builds on it: a part that is submitted, delivered or ends
settles its message here, inside the transaction that changed the part.
"""

from __future__ import annotations

import structlog

from gateway.store.records import Finished
from gateway.store.repository import Repository

log = structlog.get_logger(__name__)

FINAL_PART = ("delivered", "failed", "expired", "cancelled")


class SettlingRepo(Repository):
    def _settle_single(self, message_id: int, state: str, now: float) -> list[Finished] | None:
        """The message of one part that just became `submitted` or `delivered` takes the same state.

        One statement instead of the general derivation from every part: for a single-part
        message in a non-final state other than `state` the outcome is the same. None when the
        message has more parts or is in any other state: the caller derives it (`_settle_message_of`).
        """
        final = state in FINAL_PART
        row = self.conn.execute(
            "UPDATE messages SET state = ?, reason = NULL, finished_at = ? WHERE id = ? AND parts_total = 1"
            " AND state NOT IN (?, 'delivered', 'failed', 'expired', 'cancelled') RETURNING account_id",
            (state, now if final else None, message_id, state),
        ).fetchone()
        if row is None:
            return None
        (log.info if final else log.debug)("message.state", message=message_id, state=state)
        return [Finished(message_id, state, None, row[0])] if final else []

    def _settle_message_of(self, part_id: int, now: float) -> list[Finished]:
        """Derive the message state from its parts; report it once when it becomes final."""
        row = self.conn.execute(
            "SELECT m.id, m.state, m.parts_total, m.account_id FROM messages m"
            " JOIN parts p ON p.message_id = m.id WHERE p.id = ?",
            (part_id,),
        ).fetchone()
        if row is None:
            return []
        mid, current, total, account_id = row
        counts: dict[str, int] = dict(
            self.conn.execute(
                "SELECT state, COUNT(*) FROM parts WHERE message_id = ? GROUP BY state", (mid,)
            ).fetchall()
        )
        bad = [s for s in ("failed", "expired", "cancelled") if counts.get(s)]
        if bad:
            # One failed part fails the message; parts still queued will not be sent.
            state = bad[0] if bad[0] != "cancelled" else "cancelled"
            reasons = self.conn.execute(
                "SELECT seq, error FROM parts WHERE message_id = ? AND state IN ('failed','expired')"
                " ORDER BY seq",
                (mid,),
            ).fetchall()
            reason = (
                "; ".join(f"part {seq} of {total}: {err}" if total > 1 else str(err) for seq, err in reasons)
                or None
            )
            self.conn.execute(
                "UPDATE parts SET state = 'cancelled', done_at = ?, error = 'another part of the message"
                " failed' WHERE message_id = ? AND state IN ('queued', 'deferred', 'hold')",
                (now, mid),
            )
        elif counts.get("delivered", 0) == total:
            state, reason = "delivered", None
        elif counts.get("delivered", 0) + counts.get("submitted", 0) == total:
            state, reason = "submitted", None
        else:
            return []
        if state == current:
            return []
        final = state in ("delivered", "failed", "expired", "cancelled")
        self.conn.execute(
            "UPDATE messages SET state = ?, reason = ?, finished_at = ? WHERE id = ?",
            (state, reason, now if final else None, mid),
        )
        # The final state is the message's canonical line; "submitted" is already in each part's
        # `mt.submitted` line (with the SMSC's id), so at INFO it would only double the log.
        (log.info if final else log.debug)("message.state", message=mid, state=state)
        return [Finished(mid, state, reason, account_id)] if final and current not in FINAL_PART else []
