"""The admin repository: the queue as the CLI, notifications and tests see it, and admin actions.

Reads (message details, counts, listings, mail recorded and not sent) and the admin verbs on a
message (retry, hold, cancel).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from gateway.accountrules import SHORTEST_VALIDITY_SECONDS
from gateway.store import adminstops, outboxgroups
from gateway.store.counted import RETRIED, keep_counted
from gateway.store.outboxadmin import OutboxAdmin
from gateway.store.partnotes import MAYBE_SENT_NOTES, RETRIED_MAYBE_SENT, maybe_sent_note
from gateway.store.queueage import waiting_parts
from gateway.store.records import Finished
from gateway.store.retryrules import MailExpired, TextErased, opted_out_recipient, suspended_account
from gateway.store.retrystart import ExpiresBeforeRelease, retry_start, text_erased
from gateway.store.settling import CANCELLED_BY_ADMIN, FINAL_PART

if TYPE_CHECKING:
    from gateway.store.db import Db

# A part held for quiet hours: acceptance and a retry (`retry_start`) queue a bulk SMS due at the
# end of the window; nothing else queues a part never tried due later than now: other new and retried parts
# are due at once, recovered ones were due when claimed, a part tried has its attempt counted and one waiting
# to be tried again is `deferred` (a resume keeps each part's due time: a held one is still held).
# So no column is needed to tell it; the bind parameter is the clock's now. As in
# `QueueRepo.shift_for_clock_step`, which leaves these parts where they are. Only under an account
# with quiet hours (a window turned off releases its parts): a step back of the wall clock the clock
# check did not see leaves any part due later than now, and those were said to be held for quiet
# hours by `status`, `queue list` and the panel. The accounts are read once, not probed through each
# part's message, which cost more than the predicate before (bench/quiet_held.py).
QUIET_HELD = (
    "p.state = 'queued' AND p.attempts = 0 AND p.next_attempt_at > ?"
    " AND p.account_id IN (SELECT id FROM accounts WHERE quiet_start IS NOT NULL)"
)
# The release time of a message held for quiet hours, NULL for any other (bind: now). Only a
# queued message can be held so: the other states cost nothing (no probe of its parts). INDEXED
# BY: without statistics SQLite probes parts_due instead, every part held, for each message listed.
HELD_UNTIL = (
    "CASE WHEN m.state = 'queued' THEN (SELECT MIN(p.next_attempt_at) FROM parts p INDEXED BY parts_message"
    f" WHERE p.message_id = m.id AND {QUIET_HELD}) END AS held_until"
)

# Why a message whose text was erased at the phone's request (`smsgw phone forget`) is not sent
# again: its parts hold the marker and an empty payload, which would go to that phone, and be billed.
TEXT_ERASED = "its text was erased at the phone's request"
# The part states a cancel ends in its own write: a claimed part only with no daemon to hold it.
_CANCELLABLE = {"ask": "'queued', 'deferred', 'hold'", "end": "'queued', 'deferred', 'hold', 'active'"}
# An admin's note on a part (hold, cancel) that keeps the note saying its last submit may have reached
# the phone (`MAYBE_SENT_NOTES`) behind it: a retry then marks its re-send as a possible duplicate, and
# a held one that expires says that delivery is unknown rather than that it was never sent.
# Binds: the notes, the admin's note twice.
_ADMIN_NOTE = f"CASE WHEN {maybe_sent_note()} THEN ? || '; ' || error ELSE ? END"


def recorded_mail(
    conn: sqlite3.Connection, account_id: int | None, *, before_id: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Mail recorded and not sent as SMS (R-1.7, R-2.5): auto-replies, bounces, recalls, the
    gateway's own notices sent back. Newest first, paged by email id; `account_id` None is every
    account's (and the mail of no account), as the operator sees it.

    Such mail is an `emails` row with its `automatic` reason and never a message, so the queue's
    listings, which start from `messages`, cannot show it. A function of the connection: the panel
    runs it on its reader's thread. Two partial indexes (migration 21) hold only such mail, all of
    it and by account: a page reads its own rows, however few among millions of emails."""
    where, args = ["e.automatic IS NOT NULL"], []
    for cond, value in (("e.account_id = ?", account_id), ("e.id < ?", before_id)):
        if value is not None:
            where.append(cond)
            args.append(value)
    cur = conn.execute(
        "SELECT e.id, e.received_at, e.mail_from, e.client_ip, e.subject, e.automatic AS reason,"
        " a.name AS account FROM emails e LEFT JOIN accounts a ON a.id = e.account_id"
        f" WHERE {' AND '.join(where)} ORDER BY e.id DESC LIMIT ?",
        (*args, limit),
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def pinned_waiting(conn: sqlite3.Connection) -> dict[str, int]:
    """Waiting parts by the one link they may leave by (`AdminRepo.pinned_waiting`); /healthz
    reads it on its reader thread."""
    rows = conn.execute(
        "SELECT via, COUNT(*) FROM parts"
        " WHERE via IS NOT NULL AND state IN ('queued', 'deferred', 'active') GROUP BY via"
    ).fetchall()
    return {str(via): int(n) for via, n in rows}


class AdminRepo(OutboxAdmin):
    def __init__(self, db: Db, clock: Callable[[], float], zone: tzinfo | None = None) -> None:
        super().__init__(db, clock)
        self.zone = zone  # `[gateway] timezone`: a retry reads quiet hours on its wall clock (`retry_start`)

    def message_info(self, message_id: int) -> dict[str, Any]:
        """`mail_from`: where the message's reports go unless its account names an address: the
        envelope sender, for a premium answer or a user's mail as received (BATV-tagged, while the
        email records the sender without the tag: such a server refuses a bounce to an untagged address).
        `notify`, `orcpt`, `dsn_ret`, `envid`: what the client asked with SMTP DSN (RFC 3461), or None."""
        row = self.conn.execute(
            "SELECT m.id, m.recipient, m.source, m.text, m.parts_total, m.state, m.reason, m.created_at,"
            " COALESCE(pa.envelope, e.envelope, e.mail_from), e.header_message_id, e.subject,"
            " a.notify_address, a.dlr_mail, a.name, m.account_id, m.rcpt,"
            " m.notify, m.orcpt, e.dsn_ret, e.envid"
            " FROM messages m JOIN emails e ON e.id = m.email_id"
            " LEFT JOIN accounts a ON a.id = m.account_id"
            " LEFT JOIN premium_answers pa ON pa.message_id = m.id"
            " WHERE m.id = ?",
            (message_id,),
        ).fetchone()
        if row is None:
            raise KeyError(message_id)
        keys = (
            "id recipient source text parts_total state reason created_at mail_from header_message_id"
            " subject notify_address dlr_mail account account_id rcpt notify orcpt dsn_ret envid"
        ).split()
        return dict(zip(keys, row, strict=True))

    def count_messages(self, state: str | None = None) -> int:
        if state is None:
            return self.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        return self.conn.execute("SELECT COUNT(*) FROM messages WHERE state = ?", (state,)).fetchone()[0]

    def queue_counts(self) -> dict[str, dict[str, int]]:
        return {
            "messages": dict(
                self.conn.execute("SELECT state, COUNT(*) FROM messages GROUP BY state").fetchall()
            ),
            "parts": dict(self.conn.execute("SELECT state, COUNT(*) FROM parts GROUP BY state").fetchall()),
            "outbox": dict(self.conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()),
        }

    def pinned_waiting(self) -> dict[str, int]:
        """Waiting parts that may leave by one link (and its account's other binds) alone, by that
        link (`parts.via`: a premium answer goes by its vote's SMSC account): `status` names them
        when that link is down, as they wait whatever other link is up."""
        return pinned_waiting(self.conn)

    def quiet_held(self) -> tuple[int, float | None]:
        """Parts held for quiet hours (R-2.4) and the first release: `status` counts them apart, or
        a queue that does not move at night looks stuck. The range of index parts_due."""
        n, first = self.conn.execute(
            f"SELECT COUNT(*), MIN(p.next_attempt_at) FROM parts p WHERE {QUIET_HELD}", (self.clock(),)
        ).fetchone()
        return n, first

    def waiting_parts(self) -> int:
        return waiting_parts(self.conn)

    def list_recorded(self, limit: int = 50) -> list[dict[str, Any]]:
        """Every account's mail recorded and not sent as SMS (`recorded_mail`), for the CLI."""
        return recorded_mail(self.conn, None, limit=limit)

    def retry_message(
        self,
        message_id: int,
        *,
        before_reset: Callable[[sqlite3.Connection, int, float], None],
        default_validity_hours: float | None = None,
        ignore_expiry: bool = False,
        regroup: Callable[[list[int]], None] | None = None,
    ) -> int:
        """Admin: send a held, failed or expired message again (new validity from when it goes).

        `before_reset(conn, message_id, now)` runs in the retry's transaction before its rows are
        reset: billing's record of the attempt the retry ends (`billing_reports.mtlate.retried`), which
        a month billed already needs for its correction. Passed by the caller (the CLI, the panel)
        rather than imported: billing reads the store, and the store imports no feature built on it.
        Required, so that no caller can retry a message without it.

        It goes now, or, a bulk SMS of an account in its quiet hours, when they end (`retry_start`).
        `MailExpired` for a message its mail's own expiry ended, once that date has passed (or will have
        when quiet hours end: `ExpiresBeforeRelease`), unless
        `ignore_expiry`: its validity was shorter than its account's (`--validity-hours`, else
        `default_validity_hours`, `[gateway] validity_hours`; None: not checked), which only the
        mail's date makes it (`gateway.smtp.mailexpiry.valid_until`), and its end is behind us. The
        store keeps no copy of the header: an account's validity raised since the mail came makes an
        older message look cut short too, and the admin can insist.

        A part whose note says that its last submit may have reached the phone (held with its last
        send unanswered, expired so, `MAYBE_SENT_NOTES`) is noted `RETRIED_MAYBE_SENT`: its re-send
        is claimed as `maybe_sent`, logged and counted as a possible duplicate. Cleared, its re-send
        after a restart went out as a first one.

        `TextErased` for a message whose text was erased at the phone's request, `OptedOut` for one to a
        phone on the opt-out list (its claim would end it again, and its sender get a second bounce),
        `AccountSuspended` for one of a suspended account (held again at its claim):
        checked here, in the retry's own transaction, so that no caller (CLI, panel) can queue them
        (`gateway.store.retryrules`).

        A bounce of its mail not yet sent (held for the mail's other SMS in flight) stops naming it,
        in this transaction: it is no failure now, and once delivered it was reported undelivered. A
        bounce of it alone is dropped; one naming other SMS too is built again by `regroup`
        (`gateway.bouncegroup.regroup`, the caller's, as it holds the words' configuration; without it
        the bounce's text still names the SMS, as for callers with no such bounce to rewrite)."""
        now = self.clock()
        with self.transaction():
            row = self.conn.execute(
                "SELECT m.created_at, m.expires_at, a.validity_hours FROM messages m"
                " LEFT JOIN accounts a ON a.id = m.account_id WHERE m.id = ?",
                (message_id,),
            ).fetchone()
            if row is None:
                raise KeyError(message_id)
            if text_erased(self.conn, message_id):
                raise TextErased(TEXT_ERASED)
            if (entry := opted_out_recipient(self.conn, message_id)) is not None:
                raise entry
            if (suspended := suspended_account(self.conn, message_id)) is not None:
                raise suspended
            hours = row[2] or default_validity_hours  # `accountrules.validity_seconds`' choice
            cut = not ignore_expiry and bool(hours) and row[1] - row[0] < hours * 3600 - 1.0  # by the mail
            if cut and row[1] <= now:
                raise MailExpired(row[1])
            start = retry_start(self.conn, message_id, now, self.zone)  # a bulk SMS at night: when they end
            if cut and row[1] <= start:
                raise ExpiresBeforeRelease(row[1], start)
            # Before the mail's own end, a retry keeps it (an hour from now sent a "meeting at 10" at
            # 11); any other gets a new validity from when it goes, at least an hour.
            # The validity is the account's (or the config's), not the row's last end less its
            # acceptance: after one retry that span included the days it waited, and the next retry
            # of a 24 h SMS on day 40 gave it 11 days.
            validity = hours * 3600 if hours else row[1] - row[0]
            until = max(row[1], start + SHORTEST_VALIDITY_SECONDS) if cut else start + max(validity, 3600.0)
            before_reset(self.conn, message_id, now)  # of a billed month: a correction, not its line
            # What leaves a final state is counted as it was (`purged_counts`, as the purge counts
            # what it deletes): /metrics' counters of failed, expired and cancelled SMS fell by a
            # retry, which Prometheus reads as a counter reset, and `rate()` as a burst of them all.
            final = "('failed', 'expired', 'cancelled')"
            keep_counted(
                self.conn,
                "parts",
                "SELECT COALESCE(link, ''), state, COUNT(*) FROM parts"
                f" WHERE message_id = ? AND state IN {final} GROUP BY 1, 2",
                (message_id,),
            )
            n = self.conn.execute(
                "UPDATE parts SET state = 'queued', next_attempt_at = ?, expires_at = ?, attempts = 0,"
                # A part that ended before migration 35 has no account: the claim finds parts by it.
                f" error = CASE WHEN {maybe_sent_note()} THEN ? END,"
                " account_id = (SELECT account_id FROM messages WHERE id = ?),"
                # A new attempt: the last one's times are not this one's (the panel and `queue show`
                # showed it done before it went). Its SMSC id stays until the next submit replaces
                # it: it says the SMSC took the message once (a premium answer's free SMS is used,
                # the failure share counts it), and a receipt settles only a part `submitted`.
                " submitted_at = NULL, done_at = NULL"
                " WHERE message_id = ? AND state IN"
                " ('hold', 'failed', 'expired', 'cancelled', 'deferred', 'queued')",
                (start, until, *MAYBE_SENT_NOTES, RETRIED_MAYBE_SENT, message_id, message_id),
            ).rowcount
            if n:  # a delivered message has nothing to send again: 'queued' would stay for ever
                keep_counted(
                    self.conn,
                    "messages",
                    # RETRIED: the retry's snapshot, which /metrics must not count as accepted mail.
                    "SELECT COALESCE(account_id, ''), ? || state, 1 FROM messages"
                    f" WHERE id = ? AND state IN {final}",
                    (RETRIED, message_id),
                )
                self.conn.execute(
                    "UPDATE messages SET state = 'queued', reason = NULL, finished_at = NULL, expires_at = ?"
                    " WHERE id = ?",
                    (until, message_id),
                )
                if (left := outboxgroups.take_out(self.conn, message_id)) and regroup is not None:
                    regroup(left)
        return n

    def hold_message(self, message_id: int, reason: str = "held by admin") -> int:
        """Admin: keep a message's waiting parts from being sent until a retry; parts already handed
        to a link are not called back. A held part still expires at its validity, as a queued one would.
        A part's maybe-sent note stays behind the reason (`_ADMIN_NOTE`)."""
        with self.transaction():
            if self.conn.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone() is None:
                raise KeyError(message_id)
            n = self.conn.execute(
                f"UPDATE parts SET state = 'hold', error = {_ADMIN_NOTE} WHERE message_id = ?"
                " AND state IN ('queued', 'deferred')",
                (*MAYBE_SENT_NOTES, reason, reason, message_id),
            ).rowcount
            if n:
                self.conn.execute(
                    "UPDATE messages SET state = 'hold', reason = ? WHERE id = ?", (reason, message_id)
                )
        return n

    def cancel_message(
        self, message_id: int, tell: Callable[[list[Finished]], None] | None = None, *, claimed: str = "ask"
    ) -> int:
        """Admin: end a message's waiting and held parts. A part's maybe-sent note stays behind the
        reason (`_ADMIN_NOTE`), for a retry of the cancelled message.

        Its parts the dispatcher has claimed (`active`) are a running daemon's: `claimed="ask"` marks
        them for it to end unsent, if they have not reached a link yet (`adminstops.ask_claimed`; the
        caller waits for its verdict). With no daemon running nothing holds them (`claimed="end"`):
        they end here, as waiting ones; the start would only have queued them again.

        `tell` (the daemon's `gateway.notifier.Notifier`) is called inside this transaction with the
        message when the cancel finished it, as every other end of a message is told: its DSN is
        queued in the outbox with the state change, or neither (SPEC R-8.1, never in silence). A
        message already final (a failed long SMS whose other parts were cancelled with it) was told
        then, and is not told again."""
        now = self.clock()
        cancelled = CANCELLED_BY_ADMIN
        with self.transaction():
            row = self.conn.execute(
                "SELECT state, account_id, notify FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                raise KeyError(message_id)
            n = self.conn.execute(
                f"UPDATE parts SET state = 'cancelled', done_at = ?, error = {_ADMIN_NOTE}"
                f" WHERE message_id = ? AND state IN ({_CANCELLABLE[claimed]})",
                (now, *MAYBE_SENT_NOTES, cancelled, cancelled, message_id),
            ).rowcount
            if claimed == "ask":
                adminstops.ask_claimed(self.conn, message_id)
            if n:
                self.conn.execute(
                    "UPDATE messages SET state = 'cancelled', reason = ?, finished_at = ? WHERE id = ?",
                    (cancelled, now, message_id),
                )
                if tell is not None and row[0] not in FINAL_PART:
                    tell([Finished(message_id, "cancelled", cancelled, row[1], notify=row[2])])
        return n

    # ---- the outbox (bounces, notices, replies waiting for the relay) -----------------------------

    def outbox_waiting(self) -> tuple[int, float | None]:
        """Mail not yet handed to the relay, and when the oldest of it was queued."""
        count, oldest = self.conn.execute(
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state IN ('queued', 'active')"
        ).fetchone()
        return count, oldest

    def list_outbox(self, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first. By state along `outbox_age` (state, created_at): in id order SQLite sorted
        every mail of the state first (0.7 s for `--state sent` with 300,000 kept)."""
        sql = "SELECT id, kind, rcpt, state, attempts, last_error, next_attempt_at, created_at FROM outbox"
        args: tuple[Any, ...] = ()
        order = " ORDER BY id DESC"
        if state:
            sql += " WHERE state = ?"
            args = (state,)
            order = " ORDER BY created_at DESC, id DESC"
        cur = self.conn.execute(sql + order + " LIMIT ?", (*args, limit))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def messages_of_email(self, email_id: int) -> list[dict[str, Any]]:
        """The SMS one accepted mail became (`smsgw send --wait` follows them)."""
        cur = self.conn.execute(
            "SELECT id, recipient, state, reason FROM messages WHERE email_id = ? ORDER BY id", (email_id,)
        )
        return [dict(zip(("id", "recipient", "state", "reason"), r, strict=True)) for r in cur.fetchall()]

    def request_auth_unlock(self, target: str) -> int:
        """Admin (another process): ask the daemon to lift login locks; it reads the row when it next refuses.

        Requests older than a day are dropped here: the daemon has read them long since, and a lock
        that started after a request is not lifted by it anyway.
        """
        now = self.clock()
        with self.transaction():
            self.conn.execute("DELETE FROM auth_unlocks WHERE created_at < ?", (now - 86400,))
            return int(
                self.conn.execute(
                    "INSERT INTO auth_unlocks (target, created_at) VALUES (?, ?)", (target, now)
                ).lastrowid
                or 0
            )

    def auth_unlocks_after(self, last_id: int) -> list[tuple[int, str, float]]:
        """Unlock requests newer than `last_id`: a primary-key range, cheap enough for the event loop."""
        return self.conn.execute(
            "SELECT id, target, created_at FROM auth_unlocks WHERE id > ? ORDER BY id", (last_id,)
        ).fetchall()
