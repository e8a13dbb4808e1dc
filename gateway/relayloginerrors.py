"""What a relay login that does not go raises (`gateway.mailauth`, `gateway.relayloginkept`), apart
from the logins themselves so that each module raising them stays small. Each keeps, as the mail's
error, a kind `gateway.relayfaultkinds` reads by the exception's name."""

from __future__ import annotations

import aiosmtplib


def failing_for_now(code: int) -> bool:
    """Whether the relay's answer to AUTH is its own authentication failing for now (a 4xx, 454 in
    RFC 4954), no word on our password, rather than a refusal (5xx)."""
    return code < 500


class LoginHeld(Exception):
    """A probe stopped before its time by the relay's refusal of a send's login, without connecting:
    no failed login at the relay, so none for the probes' back-off either."""

    def __init__(self, refusal: aiosmtplib.SMTPAuthenticationError, wait: float) -> None:
        super().__init__(f"{refusal.code} {refusal.message}; the next login in {wait:.0f} s")
        self.wait = wait


class LoginFailingForNow(aiosmtplib.SMTPAuthenticationError):
    """A 4xx to AUTH (454 4.7.0, RFC 4954's "temporary authentication failure"): the relay's own
    authentication failing, for every mechanism, not a refusal of our password. Named apart in the
    mail's kept error, so that status says which (`gateway.relayfaultkinds`); retried as a refused
    login is (`SMTPAuthenticationError`), never failing the mail."""


class LoginTurnTimeout(aiosmtplib.SMTPTimeoutError):
    """A send that waited for its turn longer than one login takes: the login going before it (the
    gateway's own first after a start) kept waiting for the relay's answers. Said and kept as the
    relay's timeout (`SMTPTimeoutError`), so that the mail goes again as soon as the relay takes a
    mail, not after its own back-off of up to an hour (mail deferred for an outage is far into it)."""

    def __repr__(self) -> str:
        return f"SMTPTimeoutError({str(self)!r})"  # the kind the outbox keeps (`relayfaultkinds`)
