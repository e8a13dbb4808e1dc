"""A SASL exchange the gateway cannot go on with, cancelled as RFC 4954 (4) has it.

aiosmtplib raises an `SMTPAuthenticationError` with the continuation's code 334 where it cannot
answer the relay's challenge (a CRAM-MD5 challenge that is no base64: some relays send their
`<id@host>` as it is) or where the relay asks for more than the mechanism gives (AUTH LOGIN's user
name asked for again after the initial response). Read by its code, that 334 was a 4xx: the relay's
authentication "failing for now" for every mechanism, no other mechanism tried, and the session
left inside the exchange, where our QUIT went to the relay as the answer to its challenge (one more
failed login there). With CRAM-MD5 first in clear, every login after it did the same, and mail
stayed queued for good while the relay took PLAIN. So the exchange is cancelled with "*" (the relay
answers 501 and the session is out of AUTH), and the mechanism counts as refused: the login goes on
to the next, as after a 535.
"""

from __future__ import annotations

from collections.abc import Iterable

import aiosmtplib

from gateway.relayloginstatus import sanitised

AUTH_CONTINUE = 334  # a challenge, or a request for more: the exchange is still going
CANCEL_REFUSED = 501  # what RFC 4954 has the relay answer a cancel with


async def cancelled(
    client: aiosmtplib.SMTP,
    mechanism: str,
    answer: aiosmtplib.SMTPAuthenticationError,
    secrets: Iterable[str],
) -> aiosmtplib.SMTPAuthenticationError:
    """The mechanism's refusal for an exchange stopped at a 334 (`answer`, cleaned already): "*"
    sent, and the relay's answer to it, a 5xx. A relay that hangs up or stays silent instead leaves
    the connection closed, which the login sees before its next mechanism."""
    said = f"{mechanism.upper()} cancelled: {answer.message}"
    try:
        reply = await client.execute_command(b"*")
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPResponseException):
        client.close()  # gone, silent or unreadable: the session is no longer in a known state
        return aiosmtplib.SMTPAuthenticationError(CANCEL_REFUSED, sanitised(said, secrets))
    code = reply.code if 500 <= reply.code < 600 else CANCEL_REFUSED
    if reply.code < 500:
        client.close()  # anything but the refusal a cancel gets: no state to go on from
    return aiosmtplib.SMTPAuthenticationError(code, sanitised(f"{reply.message} ({said})", secrets))
