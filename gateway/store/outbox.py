"""The outbox repository: outbound mail (bounces, notices, replies) waiting for the mailer.

Same claim/finish pattern as SMS parts. Queuing a mail registers an after-commit callback, so the
outbox worker is woken as soon as the transaction that queued it is durable, whoever committed it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from gateway.store.clockstep import ClockStep
from gateway.store.repository import Repository

# The note of a mail found `active` at a start or a worker restart: its send was cut off, and the
# relay may have taken it before the cut.
RECOVERED_MAIL = "recovered after restart (possible duplicate)"


class ClaimedMail(NamedTuple):
    id: int
    kind: str
    mail_from: str
    rcpt: str
    content: bytes
    attempts: int
    maybe_sent: bool = False  # an earlier send was cut off and may have reached the relay


class OutboxRepo(Repository):
    # Set by the daemon to the worker's wake-up; called once per commit that queued mail.
    on_queued: Callable[[], None] = staticmethod(lambda: None)

    def enqueue_mail(
        self, kind: str, mail_from: str, rcpt: str, content: bytes, message_ref: int | None = None
    ) -> int:
        now = self.clock()
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO outbox (kind, mail_from, rcpt, content, next_attempt_at, message_ref,"
                " created_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (kind, mail_from, rcpt, content, now, message_ref, now),
            )
            assert cur.lastrowid is not None
            self.db.after_commit(self._queued)
            return cur.lastrowid

    def claim_mail(self, limit: int) -> list[ClaimedMail]:
        now = self.clock()
        with self.transaction():
            rows = self.conn.execute(
                "UPDATE outbox SET state = 'active', attempts = attempts + 1 WHERE id IN ("
                " SELECT id FROM outbox WHERE state = 'queued' AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, id LIMIT ?)"
                " RETURNING id, kind, mail_from, rcpt, content, attempts, last_error IS ?",
                (now, limit, RECOVERED_MAIL),
            ).fetchall()
        return [ClaimedMail(*row[:6], maybe_sent=bool(row[6])) for row in rows]

    def finish_mail(
        self, mail_id: int, state: str, error: str | None = None, retry_in: float | None = None
    ) -> None:
        now = self.clock()
        with self.transaction():
            if retry_in is not None:
                self.conn.execute(
                    "UPDATE outbox SET state = 'queued', last_error = ?, next_attempt_at = ? WHERE id = ?",
                    (error, now + retry_in, mail_id),
                )
            else:
                self.conn.execute(
                    "UPDATE outbox SET state = ?, last_error = ?, sent_at = ? WHERE id = ?",
                    (state, error, now, mail_id),
                )

    def next_mail_due_at(self) -> float | None:
        return self.conn.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'queued'").fetchone()[
            0
        ]

    def shift_for_clock_step(self, step: ClockStep) -> int:
        """The wall clock stepped back: a mail's next try (a back-off, a real-time wait) moves with
        it, or mail waiting would wait the step longer. A mail queued after the step (before the
        look that found it) was stamped on the stepped clock and stays. Returns how many mails moved."""
        with self.transaction():
            moved = self.conn.execute(
                "UPDATE outbox SET next_attempt_at = next_attempt_at - ?"
                " WHERE id < ? AND state IN ('queued', 'active')",
                (step.seconds, step.first("outbox")),
            ).rowcount
            if moved:
                self.db.after_commit(self._queued)  # some may be due now: the worker looks again
            return moved

    def recover_mail(self) -> int:
        """Mail left `active` (a stop or crash during its send) goes back to the queue, marked: the
        relay may have taken it already, so its next send is logged as a possible duplicate."""
        with self.transaction():
            return self.conn.execute(
                "UPDATE outbox SET state = 'queued', last_error = ? WHERE state = 'active'",
                (RECOVERED_MAIL,),
            ).rowcount

    def _queued(self) -> None:
        self.on_queued()
