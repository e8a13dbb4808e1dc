"""The queue repository: an email's SMS parts from acceptance to claim, submit, retry, hold, expiry
and delivery report.

A part that is submitted, delivered or ends settles its message's state in the same transaction,
reported once when final (`gateway/store/settling.py`). A part the SMSC took whose delivery report
never comes ends `unreported`, a day after its validity: sent, delivery unconfirmed, no failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet

import structlog

from gateway.store.accepting import AcceptingRepo
from gateway.store.adminstops import CANCEL_ASKED
from gateway.store.claimreads import CLAIMED, due_parts, ranked
from gateway.store.clockstep import ClockStep, shift_parts
from gateway.store.partnotes import MAYBE_SENT_NOTES, NO_LINK_UP, RECOVERED, expiry_note, maybe_sent_note
from gateway.store.records import ClaimedPart, Finished
from gateway.store.senttimes import shift_sent
from gateway.store.settling import UNREPORTED
from gateway.store.submitted import UNCONFIRMED, SubmittedRepo
from smsc.makers import maker

log = structlog.get_logger(__name__)

UNCONFIRMED_EXPIRED = "delivery unknown: " + UNCONFIRMED
# A release that undoes its claim's attempt (bind `not count`) undoes its last claim time too: that submit
# never reached the phone (never written, or refused), and the wait after a restart counts from the one
# before (`conversations.inflight`). Left, each claim of a part waiting for its link down held answers anew.
_UNCLAIMED = "last_claimed_at = CASE WHEN ? THEN prior_claimed_at ELSE last_claimed_at END"
# Ids of recovered parts named in the log line (`recover_active`); the count names them all.
RECOVERED_LOGGED = 50
# An SMSC reports a part by the end of its validity at the latest (the expiry is a report too); a day
# later its report is not coming (lost, or never requested of the operator). Without an end the part
# stayed `submitted` for ever: its message never final, its text kept past the retention. It ends
# `unreported`, not `expired`: the SMSC took it, so it most likely reached the phone, and a failure
# would bounce it as undelivered and count towards the account's automatic suspension.
RECEIPT_WAIT_SECONDS = 24 * 3600.0
NO_RECEIPT = "the SMSC took it but sent no delivery report within its validity and a day"
# A message ended `unreported` this long after its day has no notice (`expire_batch`).
STALE_NOTICE_SECONDS = 7 * 24 * 3600.0
# The parts still waiting to go, as the expiry's partial index (migration 55) is defined: a query
# the index serves names its condition in this form.
WAITING = "state = 'queued' OR state = 'deferred' OR state = 'hold'"
# Parts ended per write by the daemon's expiry: each write holds the event loop.
EXPIRE_BATCH = 200
# The note of a part that expires while waiting to go: which of the three depends on its last note.
_EXPIRY_NOTE, _EXPIRY_ARGS = expiry_note()
# ClaimedPart(*columns, maybe_sent) by position without its frozen __init__ (`smsc.makers`): one a
# claimed part, 13 fields set through object.__setattr__ otherwise.
_claimed = maker(ClaimedPart)


class QueueRepo(AcceptingRepo, SubmittedRepo):
    _due_accounts = 1  # accounts with parts due at the last claim: how far the next one reads
    _many_due: frozenset[str] = frozenset()  # states with more than FEW_DUE due at the last claim
    # ---- dispatching --------------------------------------------------------------------------

    def claim_due(self, limit: int, *, now: float | None = None) -> list[ClaimedPart]:
        """Claim up to `limit` due parts, round robin across accounts (oldest first within one),
        so that one account's bulk send does not hold everyone else's mail behind it.

        An account's k-th candidate takes turn k + (its parts already claimed and in flight): the
        window is shared out between the accounts that have mail due, even when claims come one part
        at a time as the window frees up, and no memory of past turns is needed. The candidates come
        from `gateway.store.claimreads`: a few index steps per account with parts waiting, however long
        the queue, whatever else of it waits and however many accounts have nothing waiting.
        """
        now = self.clock() if now is None else now
        with self.transaction():
            # Of each account, as many as it can win (`limit` at most; about `limit` shared by the
            # accounts that had parts due at the last claim, plus the turns by which the others are
            # ahead), the oldest among a few more by due time. Reading twice `limit` of every account,
            # 100 accounts with a campaign each put 100,000 rows through Python at a claim of 500
            # (0.14-0.3 s of the event loop). With one account due at the last claim it can win all:
            # the turns (a GROUP BY, a temporary b-tree) are read only when more than one has parts due.
            turns = self._turns() if self._due_accounts > 1 else None
            ahead = max(turns.values(), default=-1) + 1 if turns is not None else 0
            wins = min(limit, -(-2 * limit // self._due_accounts) + ahead)
            found, cut, whole, self._many_due = due_parts(self.conn, now, wins, self._many_due)
            if turns is None:
                turns = self._turns() if len({a for a, _due in found.values()}) > 1 else {}
            ids = ranked(found, turns, limit)
            if len(ids) < limit and cut and wins < limit:
                # Fewer accounts with parts due than last time, and one of them has more than was read.
                found, _cut, whole, self._many_due = due_parts(self.conn, now, limit, self._many_due)
                ids = ranked(found, turns, limit)
            self._due_accounts = max(1, len({account for account, _due in found.values()}))
            if not ids:
                return []
            claim = (
                "UPDATE parts SET state = 'active', attempts = attempts + 1"
                # When it went, in this statement (`conversations.reached`), by the clock as the write runs
                # (the dispatcher's `now` is read before its write waits its turn): while its note says an
                # earlier submit may have reached the phone, when that one was claimed. `error NOTNULL`
                # first: most parts have no note, and skip the note's six looks (22 VM steps a part).
                ", claimed_at = COALESCE(CASE WHEN error NOTNULL"
                f" AND {maybe_sent_note()} THEN claimed_at END, ?)"
                # And this claim's own, when it is not `claimed_at` (NULL: the row no longer): when the
                # re-send of such a part went, the wait's bound after a restart (`conversations.inflight`;
                # the running dispatcher's hand-offs are lost by then). The one before is kept for a release
                # that undoes this claim (its submit never went). Written at every claim, the two took 0.80
                # WAL frames of `parts` a mail instead of 0.74 (0.66 without them; bench/storelife.py).
                ", prior_claimed_at = last_claimed_at, last_claimed_at = CASE WHEN error NOTNULL"
                f" AND {maybe_sent_note()} THEN ? END"
                # `+state`: look the ids up by rowid; on the state index this walked the whole queue.
                f" WHERE id IN ({','.join('?' * len(ids))}) AND +state IN ('queued', 'deferred')"
            )
            at = self.clock()
            claimed = (*MAYBE_SENT_NOTES, at, *MAYBE_SENT_NOTES, at, *ids)
            if whole is not None:  # read whole with the candidates: no RETURNING (a temporary b-tree)
                if self.conn.execute(claim, claimed).rowcount != len(ids):
                    raise RuntimeError("a due part read in this transaction was no longer waiting")
                rows = [(*row[:3], row[3] + 1, *row[4:]) for row in map(whole.__getitem__, ids)]
            else:
                # `ClaimedPart.maybe_sent`, from the row being written anyway: no statement more.
                rows = self.conn.execute(
                    f"{claim} RETURNING {CLAIMED}", (*claimed, *MAYBE_SENT_NOTES)
                ).fetchall()
        parts = [_claimed(*r[:-1], bool(r[-1])) for r in rows]
        parts.sort(key=lambda p: (p.message_id, p.seq))
        return parts

    def _turns(self) -> dict[int | None, int]:
        """Each account's parts claimed and in flight, less one: the turn its first candidate takes."""
        return dict(
            self.conn.execute(
                "SELECT account_id, COUNT(*) - 1 FROM parts WHERE state = 'active' GROUP BY account_id"
            ).fetchall()
        )

    def link_taken(self, message_id: int) -> str | None:
        """The link an SMSC took a part of this message by: where its other parts must go, also
        after a restart (`gateway.linkchoice`)."""
        row = self.conn.execute(
            "SELECT link FROM parts WHERE message_id = ? AND link IS NOT NULL"
            " AND state IN ('submitted', 'delivered', 'unreported') LIMIT 1",
            (message_id,),
        ).fetchone()
        return row[0] if row else None

    def next_due_at(self) -> float | None:
        """One MIN per state, each the first entry of its range of `parts_due`: the IN list of both
        was a temporary b-tree, built and freed at each of the dispatcher's waits."""
        row = self.conn.execute(
            "SELECT MIN(due) FROM (SELECT MIN(next_attempt_at) AS due FROM parts WHERE state = 'queued'"
            " UNION ALL SELECT MIN(next_attempt_at) FROM parts WHERE state = 'deferred')"
        ).fetchone()
        return row[0]

    def release(
        self,
        part_id: int,
        *,
        delay: float | None,
        error: str | None = None,
        count: bool = False,
        due: float | None = None,
        refusal: str | None = None,
        at_expiry: bool = False,
    ) -> None:
        """Put a claimed part back; `count=False` undoes the attempt (link down, throttled).
        `at_expiry`: due at its validity's end, waiting for a link of its route (`gateway.linkwaits`).

        `refusal`: a cause for the time being (a throttle, no link up) noted as the part's last,
        unless its note says an earlier submit may have reached the phone (that doubt outlives it).

        `delay=None` keeps the part's turn (its due time as it was): one cut off by a lost
        connection goes again before the SMS to the same phone accepted after it. `due`, when given,
        is the time it is due again, instead of `delay` from now: parts to one phone handed back a
        moment apart, each due a second after its own hand-back, let a later SMS be claimed before an
        earlier one (F5); given the same due time they are claimed together, in their order."""
        if due is None and delay is not None:
            due = self.clock() + delay
        with self.transaction():
            if refusal is not None:
                self.conn.execute(
                    "UPDATE parts SET state = 'deferred',"
                    " next_attempt_at = CASE WHEN ? THEN expires_at ELSE COALESCE(?, next_attempt_at) END,"
                    f" error = CASE WHEN COALESCE({maybe_sent_note()}, 0) THEN error ELSE ? END,"
                    f" attempts = attempts - ?, {_UNCLAIMED} WHERE id = ? AND state = 'active'",
                    (at_expiry, due, *MAYBE_SENT_NOTES, refusal, 0 if count else 1, not count, part_id),
                )
                return
            self.conn.execute(
                "UPDATE parts SET state = 'deferred', next_attempt_at = COALESCE(?, next_attempt_at),"
                f" error = COALESCE(?, error), attempts = attempts - ?, {_UNCLAIMED}"
                " WHERE id = ? AND state = 'active'",
                (due, error, 0 if count else 1, not count, part_id),
            )

    def is_waiting(self, part_id: int) -> bool:
        """Whether the part waits in the queue for its next attempt (not claimed, sent or final)."""
        sql = "SELECT 1 FROM parts WHERE id = ? AND state IN ('queued', 'deferred')"
        return self.conn.execute(sql, (part_id,)).fetchone() is not None

    def is_claimed(self, part_id: int) -> bool:
        """Whether the part is claimed for sending: on the wire, or about to be."""
        sql = "SELECT 1 FROM parts WHERE id = ? AND state = 'active'"
        return self.conn.execute(sql, (part_id,)).fetchone() is not None

    def is_held(self, part_id: int) -> bool:
        """Whether the part waits on hold for a human (its attempts spent, or suspected)."""
        sql = "SELECT 1 FROM parts WHERE id = ? AND state = 'hold'"
        return self.conn.execute(sql, (part_id,)).fetchone() is not None

    def due_now(self, part_id: int, *, behind_at: float | None = None) -> None:
        """A waiting part may go at once (its wait for a late answer ended with a refusal, or its hold
        for one, `smsc.lateholds`). `behind_at`: when it was due, the later SMS to its phone put back
        due with it (`PhoneOrder`), which go now too."""
        now = self.clock()
        with self.transaction():
            self.conn.execute(
                "UPDATE parts SET next_attempt_at = MIN(next_attempt_at, ?) WHERE id = ?"
                " AND state IN ('queued', 'deferred')",
                (now, part_id),
            )
            if behind_at is not None and behind_at > now:
                self.conn.execute(
                    "UPDATE parts SET next_attempt_at = ? WHERE state IN ('queued', 'deferred')"
                    " AND next_attempt_at = ? AND destination = (SELECT destination FROM parts WHERE id = ?)",
                    (now, behind_at, part_id),
                )

    def mark_part_final(
        self, part_id: int, state: str, error: str | None, *, link: str | None = None
    ) -> list[Finished]:
        """A part that will never be sent (rejected, malformed, expired, too many attempts).

        `link` is the SMSC that refused it, kept as a submitted part keeps its link: the message
        page and /metrics name who refused it. Only a part still waiting to go changes: one that a
        late submit answer settled meanwhile (submitted, or failed) keeps its state, and its
        message is not finished (nor told) twice. `end_parts`' one-part case, so that parts end
        through one statement whoever ends them (the claim, the dispatcher, a late submit answer)."""
        return self.end_parts([part_id], state, error, link=link)

    def expire_unsent(self, part_ids: list[int]) -> list[Finished]:
        """`end_parts` for claimed parts found past their validity, with `expire_due`'s note: all of them
        end before their messages settle. Ended one by one, a long SMS's bounce said of its other parts,
        expiring in the same write, "being sent"."""
        return self.end_parts(part_ids, "expired", None, note=(_EXPIRY_NOTE, _EXPIRY_ARGS))

    def hold_part(self, part_id: int, reason: str) -> None:
        with self.transaction():
            self.conn.execute("UPDATE parts SET state = 'hold', error = ? WHERE id = ?", (reason, part_id))
            self.conn.execute(
                "UPDATE messages SET state = 'hold', reason = ? WHERE id ="
                " (SELECT message_id FROM parts WHERE id = ?)",
                (reason, part_id),
            )

    def shift_for_clock_step(self, step: ClockStep, oldest: float | None = None, times: bool = True) -> int:
        """The wall clock stepped back: move the deadlines of parts stamped before `step` with it
        (`clockstep.shift_parts`; validities by the whole step: a step forward moved them), and, with
        `times`, when their SMS were accepted and went (`senttimes.shift_sent`, `oldest` its reach; the
        clock check moves those in chunks of their own, `gateway.stepmoves`). Returns how many parts moved."""
        with self.transaction():
            if times:
                shift_sent(self.conn, self.clock(), step, oldest)
            return shift_parts(self.conn, self.clock(), ClockStep(step.seconds, step.after))

    def recover_active(self) -> list[int]:
        """Parts left `active` by a crash go back to the queue (they may have reached the SMSC); their
        ids, in order, for the log to name them (`RECOVERED_LOGGED`): an SMS a phone got twice is
        then found in the log by its part, and its re-send is a possible duplicate (`maybe_sent`)."""
        # An admin's cancel asked while the part was claimed (`adminstops.CANCEL_ASKED`) stays in front:
        # the claim ends the part by it. Replaced by RECOVERED, the part was sent though cancelled.
        with self.transaction():
            sql = (
                "UPDATE parts SET state = 'queued', error = CASE WHEN instr(coalesce(error, ''), ?1) > 0"
                " THEN ?1 || '; ' || ?2 ELSE ?2 END WHERE state = 'active' RETURNING id"
            )
            rows = self.conn.execute(sql, (CANCEL_ASKED, RECOVERED)).fetchall()
        return sorted(r[0] for r in rows)

    def requeue_crashed(self, handed: AbstractSet[int]) -> tuple[list[int], list[int]]:
        """After a dispatcher's crash, its parts left `active`: (put back, recovered) ids. One it never
        handed to a link had no SMSC: back as its stop puts such parts back, its attempt undone and its
        note kept (a suspension still holds it, its send is no possible duplicate). One `handed` to its
        link, its answer and hold refused, may be at the SMSC: recovered as a possible duplicate."""
        with self.transaction():
            active = self.conn.execute("SELECT id FROM parts WHERE state = 'active' ORDER BY id").fetchall()
            unsent = [pid for (pid,) in active if pid not in handed]
            self.requeue_unsent(unsent)
            return unsent, self.recover_active()  # what is left `active`: the handed ones

    def requeue_unsent(self, part_ids: Iterable[int]) -> None:
        """Claimed parts no link ever had go back as they were, inside the caller's write: due now,
        their attempt undone, their note kept (no RECOVERED: their send is no possible duplicate)."""
        for pid in part_ids:
            self.release(pid, delay=0.0, count=False)

    def note_no_link(self) -> None:
        """With no link up, parts about to expire unsent say so (`partnotes.NO_LINK_EXPIRED`, R-6.3)."""
        sql = f"UPDATE parts SET error = ? WHERE ({WAITING}) AND expires_at <= ? AND error IS NULL"
        self.conn.execute(sql, (NO_LINK_UP, self.clock()))

    def expire_due(self) -> list[Finished]:
        """Every part due to end now (`expire_batch` until none is left), in one transaction: for
        callers that hold no event loop (the CLI, tests). The daemon ends them a batch per write."""
        finished: list[Finished] = []
        with self.transaction():
            while True:
                batch, parts = self.expire_batch(EXPIRE_BATCH)
                finished += batch
                if parts < EXPIRE_BATCH:
                    return finished

    def expire_batch(self, limit: int) -> tuple[list[Finished], int]:
        """End up to `limit` parts due to end now; (the messages that became final, the parts ended).

        Parts never handed to an SMSC within their validity are not sent late (R-1.10); parts taken
        without a message id (`UNCONFIRMED`) end here too, since no receipt will ever settle them.
        A part whose last attempt went unanswered (or was cut off by a crash) is not said to be
        unsent: the SMSC may have taken it, so its end says the delivery is unknown. A part the SMSC
        took under a message id whose report has not come `RECEIPT_WAIT_SECONDS` after its validity
        ends `unreported` (no failure: its message is told apart, see `_settle_message_of`).

        Bounded: a long SMSC outage, or an upgrade from a version that left such parts `submitted`
        for ever, brings 100,000 due at once, and ending them (with their notices) in one write held
        the event loop for minutes: no SMTP greeting, and systemd's watchdog killed the daemon, whose
        restart began the same write again. A message ended `unreported` long after its day is not
        told (`Finished.quiet`): a notice about months-old SMS is noise.
        """
        now = self.clock()
        due = (  # (parts, index, due before): each kind by its validity (migrations 20, 34)
            (f"({WAITING}) AND expires_at <= ?", "parts_waiting_expiry", now),
            ("state = 'submitted' AND smsc_id IS NULL AND expires_at <= ?", "parts_unconfirmed", now),
            (
                "state = 'submitted' AND smsc_id IS NOT NULL AND expires_at <= ?",
                "parts_receipt_wait",
                now - RECEIPT_WAIT_SECONDS,
            ),
        )
        end = (
            (f"state = 'expired', done_at = ?, error = {_EXPIRY_NOTE}", (now, *_EXPIRY_ARGS)),
            ("state = 'expired', done_at = ?, error = ?", (now, UNCONFIRMED_EXPIRED)),
            ("state = ?, done_at = ?, error = ?", (UNREPORTED, now, NO_RECEIPT)),
        )
        rows: list[tuple[int, float]] = []
        with self.transaction():
            for (where, index, before), (change, args) in zip(due, end, strict=True):
                if len(rows) >= limit:
                    break
                rows += self.conn.execute(
                    f"UPDATE parts SET {change} WHERE id IN (SELECT id FROM parts INDEXED BY {index}"
                    f" WHERE {where} LIMIT ?) RETURNING id, expires_at",
                    (*args, before, limit - len(rows)),
                ).fetchall()
            finished: list[Finished] = []
            stale = now - RECEIPT_WAIT_SECONDS - STALE_NOTICE_SECONDS
            for pid, expires_at in rows:
                for f in self._settle_message_of(pid, now):
                    f.quiet = f.state == UNREPORTED and expires_at < stale
                    finished.append(f)
        return finished, len(rows)
