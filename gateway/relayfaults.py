"""Which failed sends are the relay's own fault (down, silent, closing, busy, set up wrongly), not
one mail's or one recipient's: mail deferred for them waits for the relay, not for its own
back-off, and goes as soon as the relay takes a mail again. Apart from the worker, which owns the
sends themselves."""

from __future__ import annotations

from gateway.mailer import MaildirError
from gateway.relayfaultkinds import CLOSING_TYPES, FAULT_TYPES, WAKE_LIKES, WAKE_SQL, fault_kind
from gateway.store.outbox import OutboxRepo

# Which failures are the relay's own is `gateway.relayfaultkinds`' one list, which the outbox's
# health reads too. A recipient's 4xx (`SMTPRecipientsRefused`: greylisting, a full mailbox) is the
# recipient's matter and keeps its back-off.


# The faults a probe of the relay (connect, EHLO, STARTTLS, AUTH, QUIT: `gateway.relayprobe`) can
# see gone: the relay down, silent, closing, or refusing our login or its TLS. Not its answers to
# MAIL (busy, a login it wants that we do not give): a probe sends no MAIL, and woke such mail every
# probe to fail again, each time one attempt of its five days.
PROBE_LIKES: list[str] = [f"{name}(%" for name in FAULT_TYPES] + [f"{name}(421,%" for name in CLOSING_TYPES]
_PROBE_SQL = "(" + " OR ".join("last_error LIKE ?" for _ in PROBE_LIKES) + ")"


def relay_fault(exc: Exception) -> str | None:
    """The kind of relay fault a failed send's error is ("unreachable", "timeout", "connection lost",
    "closing", "busy", "login refused", ...), or None when it is about the mail or its recipient
    (or the capture directory)."""
    if isinstance(exc, MaildirError):
        return None
    return fault_kind(repr(exc))  # as the outbox keeps it (`outboxworker.error_text`)


def wake_relay_faults(outbox: OutboxRepo) -> int:
    """Mail deferred for a relay fault is due now: the relay just took a mail. Their back-off (up to
    an hour) was waiting for the relay, which is back; their attempt counts stay, so a relay that
    fails again sends them on the back-off they had reached. Returns how many are due again."""
    now = outbox.clock()
    with outbox.transaction():
        return outbox.conn.execute(
            "UPDATE outbox SET next_attempt_at = ? WHERE state = 'queued' AND next_attempt_at > ?"
            f" AND {WAKE_SQL}",
            (now, now, *WAKE_LIKES),
        ).rowcount


def waits_for_relay(outbox: OutboxRepo) -> bool:
    """Whether mail deferred for a fault a probe can see gone waits out its back-off now."""
    row = outbox.conn.execute(
        f"SELECT 1 FROM outbox WHERE state = 'queued' AND next_attempt_at > ? AND {_PROBE_SQL} LIMIT 1",
        (outbox.clock(), *PROBE_LIKES),
    ).fetchone()
    return row is not None


def probe_relay_faults(outbox: OutboxRepo, *, probed: bool = False) -> int | None:
    """At the start, the one mail deferred for a relay fault that was due first is due now; the id
    of that mail, or None when none waits. A restart is when `[mail] relay` is fixed or pointed
    elsewhere, and only a send that succeeds wakes the rest (`wake_relay_faults`): with no other
    mail to send, the deferred mail sat out back-offs of up to an hour that were waiting for the
    old relay. One mail, not all: a relay still down costs one attempt at each restart, not one
    for every deferred mail. `probed`: a probe found the relay answering (`gateway.relayprobe`),
    and only mail deferred for what a probe sees is woken."""
    now = outbox.clock()
    which, likes = (_PROBE_SQL, PROBE_LIKES) if probed else (WAKE_SQL, WAKE_LIKES)
    with outbox.transaction():
        row = outbox.conn.execute(
            f"SELECT id FROM outbox WHERE state = 'queued' AND next_attempt_at > ? AND {which}"
            " ORDER BY next_attempt_at, id LIMIT 1",
            (now, *likes),
        ).fetchone()
        if row is None:
            return None
        outbox.conn.execute("UPDATE outbox SET next_attempt_at = ? WHERE id = ?", (now, row[0]))
    return int(row[0])
