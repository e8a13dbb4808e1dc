"""Which failed sends are the relay's own fault (down, silent, closing), not one mail's or one
recipient's: mail deferred for them waits for the relay, not for its own back-off, and goes as soon
as the relay takes a mail again. Apart from the worker, which owns the sends themselves."""

from __future__ import annotations

import aiosmtplib

from gateway.mailer import MaildirError
from gateway.store.outbox import OutboxRepo

# Failures of the relay itself, not of one mail or recipient, by the type its error is kept under
# (`gateway.outboxworker.error_text`, the exception's repr): no connection, no answer in time, a
# connection lost. A mail deferred for one of them waits for the relay, not for its own back-off:
# once a send succeeds it is due again (`wake_relay_faults`). A recipient's 4xx
# (`SMTPRecipientsRefused`: greylisting, a full mailbox) is the recipient's matter and keeps its
# back-off.
RELAY_FAULT_TYPES: dict[str, str] = {
    "SMTPConnectError": "unreachable",
    "ConnectionRefusedError": "unreachable",
    "ConnectionResetError": "connection lost",
    "ConnectionAbortedError": "connection lost",
    "BrokenPipeError": "connection lost",
    "SMTPServerDisconnected": "connection lost",
    "SMTPConnectTimeoutError": "timeout",
    "SMTPReadTimeoutError": "timeout",
    "SMTPTimeoutError": "timeout",
    "TimeoutError": "timeout",
}
# Replies that keep their code first in the repr (`SMTPResponseException(421, '...')`): 421 is the
# relay closing the session (RFC 5321 3.8: shutting down, too busy), whatever command it answered.
RELAY_CLOSING_TYPES = (
    "SMTPResponseException",
    "SMTPConnectResponseError",
    "SMTPHeloError",
    "SMTPSenderRefused",
    "SMTPDataError",
)
# The same as `last_error` patterns, for the one UPDATE that makes such mail due again.
_RELAY_FAULT_LIKES = [f"{name}(%" for name in RELAY_FAULT_TYPES] + [
    f"{name}(421,%" for name in RELAY_CLOSING_TYPES
]


def relay_fault(exc: Exception) -> str | None:
    """The kind of relay fault a failed send's error is ("unreachable", "timeout", "connection lost",
    "closing"), or None when it is about the mail or its recipient (or the capture directory)."""
    if isinstance(exc, MaildirError):
        return None
    name = type(exc).__name__
    if name in RELAY_FAULT_TYPES:
        return RELAY_FAULT_TYPES[name]
    if name in RELAY_CLOSING_TYPES and isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == 421:
        return "closing"
    return None


def wake_relay_faults(outbox: OutboxRepo) -> int:
    """Mail deferred for a relay fault is due now: the relay just took a mail. Their back-off (up to
    an hour) was waiting for the relay, which is back; their attempt counts stay, so a relay that
    fails again sends them on the back-off they had reached. Returns how many are due again."""
    now = outbox.clock()
    matches = " OR ".join("last_error LIKE ?" for _ in _RELAY_FAULT_LIKES)
    with outbox.transaction():
        return outbox.conn.execute(
            "UPDATE outbox SET next_attempt_at = ? WHERE state = 'queued' AND next_attempt_at > ?"
            f" AND ({matches})",
            (now, now, *_RELAY_FAULT_LIKES),
        ).rowcount
