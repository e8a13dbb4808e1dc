"""What became of a send of the outbox worker (`gateway.outboxworker`): the `Outcome`, its write
(`record_outcome`), and how a failed send is said and retried. Apart from the worker's loop, which
claims the mail and runs the sends.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
import structlog

from gateway.configbase import joined
from gateway.mailer import MaildirError
from gateway.privacy.erasure import NOT_SENT, erased_meanwhile
from gateway.store.outbox import ClaimedMail, OutboxRepo
from gateway.store.outboxgroups import members
from smsc.pacing import backoff

log = structlog.get_logger("gateway.outboxworker")


def mail_retry_delay(attempts: int) -> float:
    return backoff(attempts, 30.0, 3600.0)


# Sends of one mail the relay took whole without answering (PossiblyDeliveredError): after this
# many, it is not sent again (see `unanswered_outcome`).
UNANSWERED_SENDS = 3
# Recipients remembered as answered, at most: a relay that answers millions of addresses in a day
# would otherwise grow the set for ever; cleared whole, each is answered again at its next send.
ANSWERED_KEPT = 10_000


# What a mail's log line names it about (`record_outcome`): its SMS, MO, mail; a bounce of several
# SMS of one mail (`gateway.bouncegroup`) names them all, as `messages`.
About = dict[str, int | list[int]]


@dataclass(eq=False)
class Outcome:
    """What became of one send, to be recorded; `said` logs it once recorded."""

    mail: ClaimedMail
    state: str  # sent, failed, or queued again (after `retry_in` seconds)
    error: str | None = None
    retry_in: float | None = None
    unanswered: bool = False  # the relay took it whole without answering
    named: bool = False  # its log line names what the mail is about (`about`)
    said: Callable[[About], None] | None = None
    relay_answered: bool = False  # not taken, but answered by a relay that works (the recipient's matter)
    about: About = field(default_factory=dict)  # filled by the record's write


class MailLog:
    """The log as `FaultLog` writes to it, with the mail's kind back under `kind` (the throttle's
    own word for its key, so the worker hands it over as `mail_kind`)."""

    def warning(self, event: str, **fields: Any) -> None:
        if "mail_kind" in fields:
            fields["kind"] = fields.pop("mail_kind")
        log.warning(event, **fields)


def error_text(exc: Exception) -> str:
    """A failed send's error as the outbox keeps it (`smsgw outbox list`, the panel, the log).

    The repr names the kind of error for most (`TimeoutError()` has no message at all), but an
    OSError's drops the file it was about: a maildir's own error (`MaildirError`) is said whole, and
    any other OSError keeps its file name. A relay that cannot be reached is said in words
    (`relay_unreachable`).
    """
    if isinstance(exc, MaildirError):
        return str(exc)
    if isinstance(exc, aiosmtplib.SMTPConnectError) and (words := relay_unreachable(exc)):
        return words
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc!r}: {exc.filename}"
    return repr(exc)


# aiosmtplib's own words for a connection that failed (its `SMTP._create_connection`), matched whole:
# the relay's host and port are in them alone. Any other text is ours (`gateway.mailtls`'s hints,
# which name the setting to change) and is kept as it is.
_CONNECTING = re.compile(
    r"Error connecting to (?P<host>.+?) on port (?P<port>\d+): .*|Timed out connecting to (?P<host2>.+?)"
    r" on port (?P<port2>\d+)",
    re.DOTALL,
)
_NO_GREETING = "Timed out waiting for server ready message"
# asyncio's one error for a name whose every address failed in a different way (an IPv6 and an IPv4
# address each refusing differ by the address): a plain OSError of their texts joined, no strerror.
_MULTIPLE = "Multiple exceptions: "
# An address's refusal: found by the connect call's wait, or at once by connect() ("Connection refused").
_REFUSED = re.compile(
    rf"\[Errno {errno.ECONNREFUSED}\] "
    rf"(?:Connect call failed \([^()]*\)|{re.escape(os.strerror(errno.ECONNREFUSED))})"
)


def _every_address(text: str) -> list[str] | None:
    """The texts of each address's error in asyncio's "Multiple exceptions: …", or None for another."""
    if not text.startswith(_MULTIPLE):
        return None
    return re.split(r", (?=\[Errno \d+\] )", text.removeprefix(_MULTIPLE))


def relay_unreachable(exc: Exception) -> str | None:
    """A connection to the relay that failed, in words: "[mail] relay 127.0.0.1:4599: connection
    refused", not aiosmtplib's "Error connecting to 127.0.0.1 on port 4599: [Errno 111] Connection
    refused" in a repr. Kept in the exception type's call form, `SMTPConnectError('…')`: the outbox's
    wake-up and health find the relay's faults by that head (`gateway.relayfaultkinds`)."""
    text = str(exc)
    found = _CONNECTING.fullmatch(text)
    if found is None and text != _NO_GREETING:
        return None
    where = "[mail] relay"
    if found:
        host, port = found["host"] or found["host2"], found["port"] or found["port2"]
        where += f" {joined(host, int(port))}"  # an IPv6 address in brackets, as the setting reads
    cause = exc.__cause__
    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError):
        why = "no connection within the timeout" if found else "no greeting within the timeout"
    elif isinstance(cause, socket.gaierror):  # the relay's name: unknown, or no DNS answer
        why = f"the name does not resolve ({cause.strerror or cause})"
    elif isinstance(cause, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(cause, aiosmtplib.SMTPServerDisconnected):
        why = "it closed the connection before its greeting"
    elif isinstance(cause, ssl.SSLError):  # said by its own words where it matters (`gateway.mailer`)
        return None
    elif isinstance(cause, OSError) and (parts := _every_address(str(cause))) is not None:
        why = (
            "connection refused" if all(_REFUSED.fullmatch(p) for p in parts) else "no address of it answered"
        )
    elif isinstance(cause, OSError) and cause.strerror:
        why = cause.strerror[:1].lower() + cause.strerror[1:]  # "no route to host", "network is unreachable"
    else:
        return None
    return f"{type(exc).__name__}({f'{where}: {why}'!r})"


def record_outcome(outbox: OutboxRepo, o: Outcome) -> bool:
    """One outcome's write; whether it was recorded (a failure is not, over
    the erasure of the mail meanwhile). `about` takes what the mail is about, so that a bounce's
    line names its message, or its messages (`mail.sent`); a mail marked sent is never sent again
    after a crash."""
    mail_id = o.mail.id
    if o.state != "sent" and erased_meanwhile(outbox.conn, mail_id):
        log.warning("mail.not_sent", mail=mail_id, error=o.error, reason=NOT_SENT)
        return False
    if o.named:  # a mail's end only, not each SMS's: one read by the row's key
        sql = "SELECT message_ref, mo_ref, email_ref, bounced FROM outbox WHERE id = ?"
        *refs, bounced = outbox.conn.execute(sql, (mail_id,)).fetchone() or (None, None, None, None)
        o.about.update((k, v) for k, v in zip(("message", "mo", "email"), refs, strict=True) if v)
        if len(named := members(bounced)) > 1:  # a report of several SMS names each
            o.about["messages"] = named
    outbox.finish_mail(mail_id, o.state, o.error, o.retry_in, unanswered=o.unanswered)
    return True


def unanswered_outcome(mail: ClaimedMail, count: int, why: str, max_attempts: int, delay: float) -> Outcome:
    """A mail the relay took whole without answering goes again on the usual back-off, until
    UNANSWERED_SENDS of its sends went unanswered; then it fails, as most likely delivered.

    A relay that has it delivers it once more for each send, but one that lost it (crashed
    before it stored the mail) never delivers it: a bounce or a phone's answer lost is worse
    than one arriving twice, so it goes again, each time logged `outbox.possible_duplicate`.
    Unbounded, a relay that always drops the connection after the dot (a firewall closing an
    idle connection while a slow filter works) had the user get the mail again and again for
    the five days of `max_attempts`. The count is kept with the mail (`outbox.unanswered`), across
    restarts. Given up on, it has most likely arrived: no copy goes to a fallback address.
    `delay`: the back-off before the next send, the worker's (`mail_retry_delay`).
    """
    mail_id, kind, rcpt, attempts = mail.id, mail.kind, mail.rcpt, mail.attempts
    if count >= UNANSWERED_SENDS or attempts >= max_attempts:
        error = (
            f"{why}; given up after {attempts} tries, {count} of them unanswered (it has most"
            f" likely arrived; `smsgw outbox retry {mail_id}` sends it once more)"
        )

        def given_up(_about: About) -> None:
            log.error("mail.failed", mail=mail_id, kind=kind, to=rcpt, error=error, attempts=attempts)

        return Outcome(mail, "failed", error, unanswered=True, said=given_up)
    error = f"{why}; sent again in {delay:g} s as a possible duplicate ({count} of {UNANSWERED_SENDS})"

    def deferred(_about: About) -> None:
        log.warning("mail.deferred", mail=mail_id, kind=kind, to=rcpt, error=error, retry_in=delay)

    return Outcome(mail, "queued", error, retry_in=delay, unanswered=True, said=deferred)
