"""The one list of what makes a failed send the relay's fault (down, silent, closing, busy, or set up
wrongly for us), by the text the outbox keeps as a mail's `last_error` (the exception's repr,
`gateway.outboxworker.error_text`).

Read by the worker's wake-up (`gateway.relayfaults`: mail deferred for the relay's fault goes as
soon as the relay takes a mail again) and by the outbox's health (`gateway.store.outboxhealth`:
which mail waits for the relay, and in which words). Two lists disagreed: a mail deferred for a
refused login counted as the relay's fault in `smsgw status` but waited out its own back-off of up
to an hour after the relay took mail again. Kept free of aiosmtplib, as `smsgw status` reads it.
"""

from __future__ import annotations

# By the exception's type name alone: what kind of fault, in the words status uses.
FAULT_TYPES: dict[str, str] = {
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
    # The relay's setup for us: our login refused (535), the session left in clear where the
    # password must not go, the relay's certificate failing its check. Not about any one mail.
    "SMTPAuthenticationError": "login refused",
    # A 454 to AUTH (RFC 4954): the relay's own authentication failing for now, not our password
    # (`gateway.mailauth.LoginFailingForNow`); a 454 kept before it was named apart reads as refused.
    "LoginFailingForNow": "login failing for now",
    "RelayNotEncrypted": "no TLS for the login",
    "RelayCertificateError": "certificate refused",
    # `relay_starttls = true` and a relay that offers no STARTTLS (`gateway.mailtls.no_starttls`).
    "RelayWithoutStartTLS": "no STARTTLS offered",
    # No AUTH mechanism the relay and smsgw both speak (`gateway.relaylogincommon`): no login tried.
    "NoLoginInCommon": "no login in common",
}
# Replies that keep their code first in the repr (`SMTPResponseException(421, '...')`): 421 is the
# relay closing the session (RFC 5321 3.8: shutting down, too busy), whatever command it answered.
CLOSING_TYPES = (
    "SMTPResponseException",
    "SMTPConnectResponseError",
    "SMTPHeloError",
    "SMTPSenderRefused",
    "SMTPDataError",
)
# Replies to MAIL (our sender, not the mail's recipient): any 4xx is the relay's limit for now
# (452 4.5.3 too many mails on this connection, 451 local error, a rate limit), 530 its wish for a
# login we do not give, and another 5xx to the gateway's own address its setup ("553 not owned by
# user"): retried, and woken with the relay's other faults once it takes mail.
SENDER_REFUSED = "SMTPSenderRefused"
LOGIN_REQUIRED = 530

# Said of a bounce whose null sender the relay refused at MAIL (a 5xx: the mail fails, as for a 5xx
# to RCPT), in the log and in the mail's error, which `smsgw status` counts by it. A bounce's envelope
# sender must be null (RFC 5321 4.5.5, RFC 3464 2.2.1): there is no other sender to try.
NULL_SENDER_REFUSED = (
    "the relay refuses the null sender <> that bounces and delivery reports must be sent with"
    " (RFC 5321 4.5.5); allow MAIL FROM:<> from the gateway (its login or address) in the relay's config"
)


def fault_kind(error: str | None) -> str | None:
    """The kind of relay fault a mail's kept error is, or None when it is about the mail or its
    recipient. The same test as `FAULT_LIKES`, for one error in hand."""
    if not error:
        return None
    name, _, rest = error.partition("(")
    if name in FAULT_TYPES:
        return FAULT_TYPES[name]
    if name in CLOSING_TYPES and rest.startswith("421,"):
        return "closing"
    if name == SENDER_REFUSED and rest[:1] == "4":
        return "busy"
    if name == SENDER_REFUSED and rest.startswith(f"{LOGIN_REQUIRED},"):
        return "login required"
    if name == SENDER_REFUSED and rest[:1] == "5":
        return "our sender refused"  # the gateway's own address (a null sender's mail fails instead)
    return None


# The same as `last_error` LIKE patterns, for the SQL that picks such mail out.
FAULT_LIKES: list[str] = (
    [f"{name}(%" for name in FAULT_TYPES]
    + [f"{name}(421,%" for name in CLOSING_TYPES]
    + [f"{SENDER_REFUSED}(4%", f"{SENDER_REFUSED}({LOGIN_REQUIRED},%", f"{SENDER_REFUSED}(5%"]
)
# With its patterns written in: a LIKE whose pattern is bound has SQLite prepare the statement again
# at every run (its plan may depend on the pattern), 0.3 ms (some 0.6 M instructions) at each look of
# the outbox's health, every two seconds while mail waits for the relay.
_WRITTEN_IN = (like.replace("'", "''") for like in FAULT_LIKES)
FAULT_SQL = "(" + " OR ".join(f"last_error LIKE '{like}'" for like in _WRITTEN_IN) + ")"
# The faults a mail the relay took proves gone (`relayfaults.wake_relay_faults`): all but a 5xx to our
# own sender, which the relay's taking of a bounce (from <>) does not: woken by every bounce taken,
# such mail used one attempt a bounce and failed in minutes, not after its five days' back-off.
WAKE_LIKES: list[str] = [like for like in FAULT_LIKES if like != f"{SENDER_REFUSED}(5%"]
WAKE_SQL = "(" + " OR ".join("last_error LIKE ?" for _ in WAKE_LIKES) + ")"
