"""A message's state, derived from its parts and reported once, when it becomes final, so that the
sender hears about a long message exactly once (SPEC R-6.3).

`unreported` is final but no failure: the SMSC took every part not delivered, and only its
delivery report never came (`gateway.store.queue.RECEIPT_WAIT_SECONDS`). The SMS most likely
reached the phone, so it bounces to nobody and counts towards no suspension; the message's reason
says which parts are unconfirmed.

A failed long message's reason names its failed parts and says what became of the others. The
bounce is written (from the stored reason) in the transaction that failed the message, so it tells
what they were doing then; the stored reason follows the other parts until they end, since it is
what `smsgw queue list`, the panel and the monthly billing file show long after.

`QueueRepo` (gateway/store/queue.py) builds on it: a part that is submitted, delivered or ends
settles its message here, inside the transaction that changed the part.
"""

from __future__ import annotations

from functools import partial

import structlog

from gateway.store.records import Finished
from gateway.store.repository import Repository
from smsc.numbermask import without_numbers

log = structlog.get_logger(__name__)

UNREPORTED = "unreported"
FINAL_PART = ("delivered", "failed", "expired", "cancelled", UNREPORTED)
# The message's reason when no part's report came (a single SMS, or every part of a long one).
NO_REPORT = "sent; the SMSC sent no delivery report"
# A part whose number went on the opt-out list (R-2.4: the phone's STOP or an admin) ends so
# (`gateway.claims`, `gateway.store.stopped`); one of the gateway's own notes a long SMS's reason says
# once for all its parts (`_all_alike`).
# The reason of a message and its parts an admin cancelled (CLI or panel); its bounce says it in words
# (`gateway.reasons.human_reason`: "cancelled by the administrator").
CANCELLED_BY_ADMIN = "cancelled by admin"
OPTED_OUT = "the number went on the opt-out list (a STOP, or an admin) after this mail was accepted: not sent"
# How the reason of a long SMS begins whose failure was told and one of whose parts then reached the
# phone after all while another still awaits its receipt (`gateway.store.latecopies`): it is what marks
# the message, so that the sender bounced hears of it if the message ends delivered (`after_failure`).
TOLD_FAILED = "reported failed, then "


class SettlingRepo(Repository):
    def end_parts(
        self,
        part_ids: list[int],
        state: str,
        error: str | None,
        *,
        link: str | None = None,
        note: tuple[str, tuple[str | int, ...]] | None = None,
    ) -> list[Finished]:
        """Parts that will never be sent end in one statement, and each of their messages is settled
        once, after all of them: settled part by part, a long SMS whose every part ended together
        (its phone said STOP) was failed by its first part and its bounce said "part 1 of 2: …
        (part 2 being sent)" of a part that ended a moment later. As `mark_part_final` (`link`, the
        SMSC that refused them): only parts still waiting to go change, one a late answer settled
        meanwhile keeps its state, and its message is not finished (nor told) twice. `note`: the
        error as SQL on the part's last one and its arguments, in place of `error` (an expiry's)."""
        if not part_ids:
            return []
        now = self.clock()
        marks = ",".join("?" * len(part_ids))
        said, args = note if note is not None else ("?", (error,))
        with self.transaction():
            rows = self.conn.execute(
                f"UPDATE parts SET state = ?, error = {said}, done_at = ?, link = COALESCE(?, link)"
                f" WHERE id IN ({marks}) AND state IN ('queued', 'deferred', 'active')"
                " RETURNING id, message_id",
                (state, *args, now, link, *part_ids),
            ).fetchall()
            order = {pid: i for i, pid in enumerate(part_ids)}
            first: dict[int, int] = {}  # message -> a part of it that ended, in the callers' order
            for pid, mid in sorted(rows, key=lambda row: order[row[0]]):
                first.setdefault(mid, pid)
            return [f for pid in first.values() for f in self._settle_message_of(pid, now)]

    def _settle_single(
        self, message_id: int, state: str, now: float, *, told: tuple[int | None, str | None] | None = None
    ) -> list[Finished] | None:
        """The message of one part that just became `submitted` or `delivered` takes the same state.

        One statement instead of the general derivation from every part: for a single-part
        message in a non-final state other than `state` the outcome is the same. None when the
        message has more parts or is in any other state: the caller derives it (`_settle_message_of`).
        `told`, the message's (account_id, notify) when the caller read them in this transaction:
        the update then needs no RETURNING either.
        """
        final = state in FINAL_PART
        sql = (
            "UPDATE messages SET state = ?, reason = NULL, finished_at = ? WHERE id = ? AND parts_total = 1"
            # Comparisons, not NOT IN: SQLite tests a list of three or more through a temporary b-tree.
            " AND state <> ? AND state <> 'delivered' AND state <> 'failed' AND state <> 'expired'"
            " AND state <> 'cancelled' AND state <> 'unreported'"
        )
        args = (state, now if final else None, message_id, state)
        if not final or told is not None:  # no RETURNING (SQLite builds its rows in a temporary b-tree)
            if self.conn.execute(sql, args).rowcount == 0:
                return None
            row = told
        else:
            row = self.conn.execute(sql + " RETURNING account_id, notify", args).fetchone()
            if row is None:
                return None
        self._said(message_id, state, None, final)
        return [Finished(message_id, state, None, row[0], notify=row[1])] if final and row else []

    def _settle_message_of(self, part_id: int, now: float) -> list[Finished]:
        """Derive the message state from its parts; report it once when it becomes final.

        `unreported` is reported as any final state; `gateway.notifier.Notifier` tells it apart (no
        bounce, no failure counted, a notice only to an account that wants every outcome)."""
        row = self.conn.execute(
            "SELECT m.id, m.state, m.reason, m.parts_total, m.account_id, m.notify FROM messages m"
            " JOIN parts p ON p.message_id = m.id WHERE p.id = ?",
            (part_id,),
        ).fetchone()
        if row is None:
            return []
        mid, current, said, total, account_id, notify = row
        counts: dict[str, int] = dict(
            self.conn.execute(
                "SELECT state, COUNT(*) FROM parts WHERE message_id = ? GROUP BY state", (mid,)
            ).fetchall()
        )
        bad = [s for s in ("failed", "expired", "cancelled") if counts.get(s)]
        if bad:
            # One failed part fails the message; parts still queued will not be sent.
            state = bad[0] if bad[0] != "cancelled" else "cancelled"
            rows = self.conn.execute(
                "SELECT seq, state, error FROM parts WHERE message_id = ? ORDER BY seq", (mid,)
            ).fetchall()
            reasons = [(seq, err) for seq, st, err in rows if st in ("failed", "expired")]
            admin = [(seq, err) for seq, st, err in rows if st == "cancelled" and err == CANCELLED_BY_ADMIN]
            if not reasons and admin:
                # Parts the dispatcher had claimed, which an admin's cancel ended before they went: the
                # message had no reason ("no reason given by the SMSC" in its bounce), and one with a
                # part delivered read as wholly unsent. A cancel of waiting parts writes it itself.
                reasons = admin if len(admin) < total else []
                rows = [r for r in rows if not (r[1] == "cancelled" and r[2] == CANCELLED_BY_ADMIN)]
            reason = (
                (CANCELLED_BY_ADMIN if admin and not reasons and not rows else None)
                or _all_alike(rows)
                or (
                    "; ".join(
                        f"part {seq} of {total}: {err}" if total > 1 else str(err) for seq, err in reasons
                    )
                    or None
                )
            )
            if reason and total > 1:
                reason += _the_rest(rows)
            self.conn.execute(
                "UPDATE parts SET state = 'cancelled', done_at = ?, error = 'another part of the message"
                " failed' WHERE message_id = ? AND state IN ('queued', 'deferred', 'hold')",
                (now, mid),
            )
        elif counts.get("delivered", 0) == total:
            state, reason = "delivered", None
        elif counts.get("delivered", 0) + counts.get("submitted", 0) == total:
            state, reason = "submitted", None
        elif counts.get("delivered", 0) + counts.get(UNREPORTED, 0) == total:
            state, reason = UNREPORTED, self._unconfirmed(mid, total, counts.get(UNREPORTED, 0))
        else:
            return []
        if state == current:
            if bad and reason and reason != said:
                self._restate(mid, reason)
            return []
        final = state in FINAL_PART
        # Its sender had a bounce: the delivery's notice says it reached the phone after all.
        after_failure = state == "delivered" and (said or "").startswith(TOLD_FAILED)
        self.conn.execute(
            "UPDATE messages SET state = ?, reason = ?, finished_at = ? WHERE id = ?",
            (state, reason, now if final else None, mid),
        )
        # The final state is the message's canonical line; "submitted" is already in each part's
        # `mt.submitted` line (with the SMSC's id), so at INFO it would only double the log. Its reason
        # goes with it: an SMSC's UNDELIV was in a DEBUG line alone, and the INFO log never said why.
        self._said(mid, state, reason, final)
        finished = Finished(mid, state, reason, account_id, notify=notify, after_failure=after_failure)
        # Bounced already, then a part reached the phone after all, and now another failed: the bounce
        # was right (the SMS is not whole on the phone) and the sender's remedy the same. A second
        # "could not be delivered" with no word of the first read as another SMS lost and counted a
        # second failure towards the account's suspension; the reason says what happened, for the
        # queue list and the panel.
        told = (said or "").startswith(TOLD_FAILED) and state != "delivered"
        return [finished] if final and current not in FINAL_PART and not told else []

    def _said(self, message_id: int, state: str, reason: str | None, final: bool) -> None:
        """The message's `message.state` line, once its transaction commits: said before, on a full
        disk it went out at each retry of a write that never committed ("delivered" seven times for
        an SMS the database still had `submitted`), which a log-based check took for the outcome."""
        if not final and reason is None:
            log.debug("message.state", message=message_id, state=state)
            return
        # The SMSC's words may quote the phone: masked in the log (`without_numbers`), whole in the row.
        shown = {} if reason is None else {"reason": without_numbers(reason)}
        fields = {"message": message_id, "state": state} | shown
        if not self.conn.in_transaction:  # (an autocommit caller's statement is committed already)
            log.info("message.state", **fields)
            return
        self.db.after_commit(partial(log.info, "message.state", **fields))

    def _restate(self, message_id: int, reason: str) -> None:
        """Bring a failed message's reason up to date with its other parts, without telling anyone.

        "part 1 of 2: … (part 2 being sent)" was right in the bounce, written when part 1 failed,
        but stayed for good in the queue list, the panel and the billing file after part 2 had
        been delivered or had failed too. Only a long message's reason can change (a single
        part's is final with it), and only when its other parts move: no statement for a single SMS.
        """
        self.conn.execute("UPDATE messages SET reason = ? WHERE id = ?", (reason, message_id))
        # A later part's failure, said (the SMSC's words without the number they may quote).
        log.info("message.reason", message=message_id, reason=without_numbers(reason))

    def _unconfirmed(self, message_id: int, total: int, unreported: int) -> str:
        """The reason of an `unreported` message: which parts went without a report, when not all."""
        if unreported == total:
            return NO_REPORT
        sql = "SELECT seq FROM parts WHERE message_id = ? AND state = ? ORDER BY seq"
        seqs = [str(seq) for (seq,) in self.conn.execute(sql, (message_id, UNREPORTED))]
        which = f"part {seqs[0]}" if len(seqs) == 1 else f"parts {', '.join(seqs)}"
        return f"sent, delivery of {which} of {total} unconfirmed: the SMSC sent no delivery report"


def _all_alike(rows: list[tuple[int, str, str | None]]) -> str | None:
    """The reason of a long SMS whose every part ended with the same note of the gateway's own, said
    once ("all 4 parts: validity period expired …", "both parts: the phone answered … (STOP) …"):
    the queue list, the panel and the bounce repeated it for each part. None for a single SMS, when
    the parts ended in different ways (each is named, as before), or for an SMSC's refusal, which
    `gateway.reasons` reads (its code, whether a retry can help) only after "part N of M: "."""
    notes = {(state, error) for _seq, state, error in rows}
    if len(rows) < 2 or len(notes) != 1:
        return None
    [(state, error)] = notes
    if not error or not (state == "expired" or (state == "failed" and error == OPTED_OUT)):
        return None
    return f"{'both' if len(rows) == 2 else f'all {len(rows)}'} parts: {error}"


# What became of a failed long SMS's other parts, for its bounce and its stored reason (`_restate`):
# naming only the failed part read as if the others had arrived.
_REST = (
    (("delivered",), "delivered"),
    (("submitted",), "sent, report pending"),
    ((UNREPORTED,), "sent, no report came"),
    (("active",), "being sent"),
    (("queued", "deferred", "hold", "cancelled"), "not sent"),
)


def _the_rest(rows: list[tuple[int, str, str | None]]) -> str:
    said = the_rest_said(rows)
    return f" ({said})" if said else ""


def the_rest_said(rows: list[tuple[int, str, str | None]]) -> str:
    """What became of `rows` (seq, state, error), in words: "part 2 delivered; part 3 not sent"."""
    said = []
    for states, words in _REST:
        seqs = [str(seq) for seq, state, _ in rows if state in states]
        if seqs:
            said.append(f"{'part' if len(seqs) == 1 else 'parts'} {', '.join(seqs)} {words}")
    return "; ".join(said)
