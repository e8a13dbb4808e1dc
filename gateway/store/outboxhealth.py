"""Whether the outbox's mail is getting out: the figures `smsgw status`, the operator's dashboard and
`/metrics` judge the relay by.

Bounces, notices and every phone's answer leave only through the relay. With the relay down for a
day, status exited 0, /healthz said ok and the dashboard "Nothing." needing attention, while
thousands of answers waited: a monitoring check that reads the exit code never fired. Mail waiting
longer than `STUCK_SECONDS` is trouble, unless the relay is taking other mail meanwhile, or has
taken some since and defers only certain recipients (greylisting, a full mailbox): one such mail
kept `smsgw status` failing for the five days of its retries, hiding any real trouble behind it.
The relay's last answer says why.

Each wait counts the time that passed: a step forward of the clock within it is none
(`gateway.store.forwardsteps`), as for the reply windows. Counted, a step of 8 days (NTP setting right a
clock that was behind) made mail queued a minute before it "stuck for 8 days": status exited 1, the
dashboard and /healthz said the relay was down, until the mail went.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.relayfaultkinds import FAULT_SQL, NULL_SENDER_REFUSED, fault_kind
from gateway.store.forwardsteps import row_steps, seconds_after, window_start
from gateway.store.outbox import relay_reply

# A relay that has taken no mail for this long is down or refusing us (greylisting lets a mail
# through within minutes; the back-off tries 30 s, 1, 2, 4, 8 and 16 min apart by then).
STUCK_SECONDS = 1800.0
# A send the relay has not answered for this long: a relay that never answers the final dot holds a
# send for its ten minutes' wait (RFC 5321 4.5.3.2.6), and four of them held every send slot while
# status said all was well. A slow content filter answers within a minute or two.
SILENT_SECONDS = 300.0
DAY = 86400.0


# Mail given up on since a time, by when it was (`sent_at`, set by finish_mail for every final
# state): counted by when it was queued, a mail failed after days of retries was left out, and a
# relay down for five days vanished from view once all its mail had failed. Read off migration 37's
# partial index, whose predicate the count repeats (SQLite takes it only then).
FAILED_SINCE = "SELECT COUNT(*) FROM outbox WHERE state = 'failed' AND sent_at >= ?"
# When a deferred mail was deferred: its next try less the back-off it was given
# (`outboxworker.mail_retry_delay`: 30 s doubling up to an hour). Ordered by its next try alone,
# the mail with the longest back-off, deferred hours ago, named a stale error as the latest.
_DEFERRED_AT = "next_attempt_at - MIN(30.0 * (1 << MAX(MIN(attempts, 21) - 1, 0)), 3600.0)"


# A failed mail's error that says the relay refuses the null sender.
NULL_SENDER_MARK = NULL_SENDER_REFUSED.partition(" <>")[0]


@dataclass(frozen=True)
class OutboxHealth:
    waiting: int  # queued or being sent
    oldest: float | None  # when the oldest of them was queued
    last_error: str | None  # the relay's answer to the mail deferred last
    failed_day: int  # mails given up on in the last 24 hours
    relay_ok: bool  # it took mail within STUCK_SECONDS, or defers only some recipients
    relay_fault: bool = (
        False  # the last answer is the relay's own failure (unreachable, 421), not a recipient's
    )
    fault_kind: str | None = None  # which (`gateway.relayfaultkinds`): "unreachable", "busy", ...
    silent_since: float | None = None  # when the oldest send still unanswered began
    silent: int = 0  # sends unanswered for over SILENT_SECONDS
    last_failed: str | None = None  # the error of the mail given up on last (in the last 24 hours)
    null_refused: int = 0  # of those, bounces failed as the relay refuses the null sender
    stepped: float = 0.0  # seconds the clock stepped forward since the oldest was queued: not waited
    silent_stepped: float = 0.0  # and since the oldest send unanswered began

    def waited(self, now: float) -> float | None:
        """How long the oldest mail has waited: the time that passed since it was queued (never below 0,
        whatever a kept step's time)."""
        return None if self.oldest is None else max(0.0, now - self.oldest - self.stepped)

    def stuck_for(self, now: float) -> float | None:
        """How long the oldest mail has waited, once that is past STUCK_SECONDS and the relay is
        not taking mail (see the module's docstring); or how long a send has waited for the relay's
        answer, once past SILENT_SECONDS."""
        if self.silent:
            assert self.silent_since is not None
            return max(0.0, now - self.silent_since - self.silent_stepped)
        waited = self.waited(now)
        if waited is None or waited <= STUCK_SECONDS or self.relay_ok:
            return None
        return waited

    @property
    def said(self) -> str | None:
        """The relay's last answer as an SMTP reply reads, not as Python wrote its exception; or its
        silence, when sends wait for it."""
        if self.silent:
            return f"no answer to {self.silent} send(s) for over {SILENT_SECONDS / 60:g} min"
        return relay_reply(self.last_error)[1] if self.last_error else None


def outbox_health(conn: sqlite3.Connection, now: float) -> OutboxHealth:
    """A few index reads (outbox_due, outbox_age, outbox_failed), and a look over the deferred mail:
    also on a large outbox of a relay down for days. Each window's start moved back by the steps
    forward made within it (`forwardsteps.window_start`: the steps' one row, read by its key)."""
    stuck_start = window_start(conn, now, STUCK_SECONDS)
    day_start = window_start(conn, now, DAY)
    waiting, oldest = conn.execute(
        "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state IN ('queued', 'active')"
    ).fetchone()
    # A mail being sent has its send's start in next_attempt_at (`OutboxRepo.claim_mail`).
    silent_since, silent = conn.execute(
        "SELECT MIN(next_attempt_at), COUNT(*) FILTER (WHERE next_attempt_at < ?) FROM outbox"
        " WHERE state = 'active'",
        (window_start(conn, now, SILENT_SECONDS),),
    ).fetchone()
    # The relay's latest word: the mail deferred last.
    row = conn.execute(
        "SELECT last_error FROM outbox WHERE state = 'queued' AND last_error IS NOT NULL"
        f" ORDER BY {_DEFERRED_AT} DESC LIMIT 1"
    ).fetchone()
    (failed,) = conn.execute(FAILED_SINCE, (day_start,)).fetchone()
    failed_last = conn.execute(
        "SELECT last_error FROM outbox WHERE state = 'failed' AND sent_at >= ? ORDER BY sent_at DESC LIMIT 1",
        (day_start,),
    ).fetchone()
    (null_refused,) = conn.execute(
        "SELECT COUNT(*) FROM outbox WHERE state = 'failed' AND sent_at >= ? AND instr(last_error, ?) > 0",
        (day_start, NULL_SENDER_MARK),
    ).fetchone()
    (last_sent,) = conn.execute(
        "SELECT MAX(sent_at) FROM outbox WHERE state = 'sent' AND created_at >= ?", (day_start,)
    ).fetchone()
    # The relay's own faults, by the one list the worker's wake-up reads too: the latest of them.
    fault = conn.execute(
        f"SELECT last_error FROM outbox WHERE state = 'queued' AND {FAULT_SQL}"
        f" ORDER BY {_DEFERRED_AT} DESC LIMIT 1"
    ).fetchone()
    # A refusal of the recipient (aiosmtplib's SMTPRecipientsRefused: 450 greylisted, 452 mailbox
    # full) is the recipient's matter, and mail deferred for the relay's own fault goes as soon as
    # it takes a mail (`gateway.relayfaults`); anything else that kept a mail waiting past
    # STUCK_SECONDS (a 451 to its end every time, its sends unanswered) is trouble, even while the
    # relay takes other mail: such mail was deferred for hours with status saying all was well.
    (for_itself,) = conn.execute(
        "SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND created_at < ? AND last_error IS NOT NULL"
        f" AND last_error NOT LIKE 'SMTPRecipientsRefused%' AND NOT {FAULT_SQL}",
        (stuck_start,),
    ).fetchone()
    # Recipients' refusals excuse the relay only while it takes other mail: one that refuses every
    # RCPT (554 relay access denied, 421 shutting down, 451 a broken lookup) has taken nothing since.
    took_since = last_sent is not None and oldest is not None and last_sent >= oldest
    # Mail taken since the oldest waiting one excuses that one only when no mail waits for the
    # relay's own fault: mail refused "connection refused" two hours ago beside a mail taken a second
    # after it is a relay down for two hours, not "fine".
    relay_ok = for_itself == 0 and (
        (last_sent is not None and last_sent >= stuck_start) or (fault is None and took_since)
    )
    # The relay's own fault speaks first: a recipient greylisted for hours is retried last.
    said = fault[0] if fault else (row[0] if row else None)
    kind = fault_kind(fault[0]) if fault else None
    steps = row_steps(conn) if oldest is not None or silent_since is not None else []
    return OutboxHealth(
        int(waiting),
        oldest,
        said,
        int(failed),
        relay_ok,
        fault is not None,
        kind,
        silent_since,
        int(silent),
        failed_last[0] if failed_last else None,
        int(null_refused),
        0.0 if oldest is None else seconds_after(steps, oldest),
        0.0 if silent_since is None else seconds_after(steps, silent_since),
    )
