"""The relay login of a send and of a probe (`SmtpRelayMailer`), in an order that costs the relay
the fewest failed logins.

aiosmtplib's `login` tries every mechanism the relay offers, CRAM-MD5 first, until one is taken,
as some relays offer ones they do not take: Dovecot keeping hashed passwords offers CRAM-MD5 and
refuses every account with it, and takes PLAIN; some Exchange and old Sendmail setups offer PLAIN
and answer it 535, for every account or some, and take LOGIN. So every send cost such a relay one
failed login, and a probe that always tried the same first mechanism was refused for good, backed
off to an hour and never woke the mail deferred, while every send went. Here the mechanism the last
login taken used (a send's or a probe's) goes first, and on a TLS session PLAIN and LOGIN go before
CRAM-MD5, which adds nothing under TLS: so after a restart, where the mechanism taken is forgotten,
the first login over TLS costs a relay refusing CRAM-MD5 no failed login. In clear (a loopback
relay, or `relay_starttls = false`) CRAM-MD5 still goes first, as the one mechanism keeping the
password off the wire.

A send goes on through every mechanism offered, as aiosmtplib's `login`. A probe tries one: the
first in that order, and after a probe refused, the one after the mechanism refused, in turn. So a
relay refusing PLAIN and taking LOGIN is found by the next probe, and a wrong password costs the
relay one failed login a probe: with the probes' back-off after a refusal (`gateway.relayprobepace`:
60, 120, 240 s) four in the first ten minutes, under fail2ban's five (Postfix's SASL jail). Two a
probe were eight, and banned the gateway.

A refusal ends the login where going on would only cost another failed login or hide it: the relay
hung up after it (Exchange does, after a failed AUTH) or answers the next AUTH 421, where the next
mechanism was tried on the closed connection and its "connection lost" replaced the 535, so the
probes never backed off; or the refusal is a 4xx (454: the relay's own authentication service
failing for now, as for every mechanism). A 454 still counts as a refused login for the probes'
back-off: Postfix logs it as the same failed SASL login that fail2ban counts.
"""

from __future__ import annotations

import aiosmtplib

# The mechanisms that hand the relay the password itself, which TLS makes as safe as CRAM-MD5.
CLEAR_PASSWORD = frozenset({"plain", "login"})
CLOSING = 421  # the relay ends the session (RFC 5321 3.8), here after a refused login


class ProbeTurns:
    """The mechanism each relay and account last refused a probe, for the next probe to try the one
    after it. Kept by the module rather than the mailer: one relay and one account a daemon; a
    restart forgets it, and the probes begin again at the first mechanism."""

    def __init__(self) -> None:
        self._refused: dict[tuple[str, int, str], str] = {}

    def next(self, key: tuple[str, int, str], order: list[str]) -> str:
        last = self._refused.get(key)
        if last in order:
            return order[(order.index(last) + 1) % len(order)]
        return order[0]

    def refused(self, key: tuple[str, int, str], mechanism: str) -> None:
        self._refused[key] = mechanism

    def taken(self, key: tuple[str, int, str]) -> None:
        self._refused.pop(key, None)


PROBE_TURNS = ProbeTurns()


def login_order(client: aiosmtplib.SMTP, known: str | None) -> list[str]:
    """The mechanisms offered, in the order tried: `known` (the last one taken) first, then
    aiosmtplib's order, with CRAM-MD5 last on a TLS session."""
    offered = list(client.supported_auth_methods)
    if client.get_transport_info("sslcontext") is not None:
        offered.sort(key=lambda mechanism: mechanism not in CLEAR_PASSWORD)  # stable: PLAIN, LOGIN
    if known in offered:
        offered.remove(known)
        offered.insert(0, known)
    return offered


async def greet(client: aiosmtplib.SMTP) -> None:
    """EHLO, or HELO to a relay without ESMTP, which a send's transaction goes on with too."""
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        await client.helo()


async def log_in(
    client: aiosmtplib.SMTP, username: str, password: str, known: str | None, *, probe: bool
) -> str | None:
    """Logs in, raising the relay's refusal (with no mechanism offered, `login`'s own error);
    returns the mechanism taken, for the next login to try first."""
    if client.is_ehlo_or_helo_needed:
        await greet(client)  # no ESMTP: no AUTH either, which `login` says
    order = login_order(client, known)
    if not order:
        await client.login(username, password)
        return None
    key = (client.hostname or "", client.port or 0, username)
    if probe:
        order = [PROBE_TURNS.next(key, order)]
    refused: aiosmtplib.SMTPAuthenticationError | None = None
    for mechanism in order:
        if refused is not None and not client.is_connected:
            break  # hung up after its refusal: that refusal says why, not the closed connection
        try:
            await getattr(client, f"auth_{mechanism.replace('-', '')}")(username, password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            if refused is not None and exc.code == CLOSING:
                break
            refused = exc
            if probe:
                PROBE_TURNS.refused(key, mechanism)
            if exc.code < 500:
                break  # 454: the relay's authentication failing for now, whatever the mechanism
            # Even a 535 to PLAIN may be the mechanism's and not the password's (a relay taking
            # LOGIN alone): a send tries the next mechanism.
            continue
        except aiosmtplib.SMTPServerDisconnected:
            if refused is None:
                raise
            break
        PROBE_TURNS.taken(key)
        return mechanism
    assert refused is not None
    raise refused
