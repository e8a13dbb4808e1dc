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

A send goes on through every mechanism offered, as aiosmtplib's `login`, until a refusal that ends
it (below). A probe tries one: the first in that order, and after a refusal, the one after the
mechanism refused, in turn. So a relay refusing PLAIN and taking LOGIN is found by the next probe,
and a wrong password costs the relay one failed login a probe: with the probes' back-off after a
refusal (`gateway.relayprobepace`: 60, 120, 240 s) four in the first ten minutes, under fail2ban's
five (Postfix's SASL jail). Two a probe were eight, and banned the gateway.

A refusal ends the login where going on would only cost another failed login or hide it: the relay
hung up after it (Exchange does, after a failed AUTH) or answers the next AUTH 421, where the next
mechanism was tried on the closed connection and its "connection lost" replaced the 535, so the
probes never backed off; the mechanism refused is the one the relay last took (the password or the
account is refused, not the mechanism); or the refusal is a 4xx (454: the relay's own authentication
service failing for now, as for every mechanism). A 454 still counts as a refused login for the
probes' back-off: Postfix logs it as the same failed SASL login that fail2ban counts. A 421 to the
first AUTH is no refusal: the relay closing (shutting down, too busy), a fault of the relay's like
a 421 to any command, which the probes keep probing every 30 s for.

Each send tried its own login: with a wrong password and three mails queued, each mail at its own
back-off on its own outbox slot cost the relay every mechanism offered, 29 failed logins in 100 s,
where fail2ban bans the gateway's address at five in ten minutes and Exchange locks the account. So
a mailer's logins go one at a time (`LoginGate`), and once the relay refused one no send logs in:
each fails at once with that refusal, deferred as before (one attempt of the mail, its back-off
unchanged), without connecting. The probes alone log in then, one mechanism each, and after a send's
refusal no sooner after the last failed login than the probes' back-off (60, 120, 240 s... after the
first, second, third failed login since one was taken: so a send's three refusals put the next probe
four minutes on), which keeps any ten minutes to four failed logins with mail queued. A login taken
clears it and the probe's wake brings the mail back; a restart forgets it, so a password fixed in
the config goes at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiosmtplib
import structlog

from gateway.relayprobepace import PROBE_EVERY, PROBE_EVERY_MAX

log = structlog.get_logger(__name__)

# The mechanisms that hand the relay the password itself, which TLS makes as safe as CRAM-MD5.
CLEAR_PASSWORD = frozenset({"plain", "login"})
CLOSING = 421  # the relay ends the session (RFC 5321 3.8): after a refused login, or for itself


class ProbeTurns:
    """The mechanism each relay and account last refused (a probe's, or a send's last), for the next
    probe to try the one after it. Kept by the module rather than the mailer: one relay and one
    account a daemon; a restart forgets it, and the probes begin again at the first mechanism."""

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


class LoginGate:
    """A mailer's logins to its relay and account, one at a time, and the relay's last refusal of
    them: while the relay refuses our login, a send fails at once with that refusal. One at a time, a
    send waiting for another's login sees its refusal before it tries its own: three mails due at
    once were three logins, each with every mechanism offered.

    The probes are paced by their own back-off (`gateway.relayprobe`), one failed login each; a send's
    refusal, up to three failed logins (one a mechanism), the probes did not see: after one, a probe
    logs in no sooner than that back-off after the last failed login (`gateway.relayprobepace`: 60 s
    after the first since the relay took one, twice as long after each next, up to an hour), and
    sooner says the refusal again without connecting."""

    def __init__(self, clock: Callable[[], float], wait: float) -> None:
        self.clock = clock
        self.wait = wait  # for the login before this one: a relay that slow is timing out anyway
        self.refusal: aiosmtplib.SMTPAuthenticationError | None = None
        self.failed = 0  # failed logins since the relay last took one
        self.failed_at = 0.0
        self.send_refused = False  # a send's login among them: the probes' back-off did not count it
        self.turn = asyncio.Lock()

    def next_login_at(self) -> float:
        """When a probe may log in again after the relay refused the last login."""
        return self.failed_at + min(PROBE_EVERY * 2**self.failed, PROBE_EVERY_MAX)

    def held(self, *, probe: bool) -> aiosmtplib.SMTPAuthenticationError | None:
        """The relay's refusal, said again for a login that is not to go now: a send's while the relay
        refuses our login, a probe's before its time."""
        if self.refusal is None:
            return None
        if probe and (not self.send_refused or self.clock() >= self.next_login_at()):
            return None
        return aiosmtplib.SMTPAuthenticationError(self.refusal.code, self.refusal.message)

    def refused(self, exc: aiosmtplib.SMTPAuthenticationError, relay: str, *, probe: bool) -> None:
        if self.refusal is None:
            log.warning(
                "mail.relay_login_refused",
                relay=relay,
                reply=f"{exc.code} {exc.message}",
                note="no mail logs in until a probe's login is taken (the probes back off to an hour);"
                " a password fixed in the config goes at once after a restart",
            )
        self.refusal = exc
        self.failed += 1
        self.failed_at = self.clock()
        self.send_refused = self.send_refused or not probe

    def taken(self) -> None:
        self.refusal = None
        self.failed = 0
        self.send_refused = False


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
    client: aiosmtplib.SMTP,
    username: str,
    password: str,
    known: str | None,
    *,
    probe: bool,
    gate: LoginGate,
) -> str | None:
    """Logs in, raising the relay's refusal (with no mechanism offered, `login`'s own error), or the
    one `gate` holds without trying; returns the mechanism taken, for the next login to try first."""
    if client.is_ehlo_or_helo_needed:
        await greet(client)  # no ESMTP: no AUTH either, which `login` says
    order = login_order(client, known)
    if not order:
        await client.login(username, password)
        return None
    async with asyncio.timeout(gate.wait):
        await gate.turn.acquire()
    try:
        if (held := gate.held(probe=probe)) is not None:
            raise held
        return await _try_mechanisms(client, username, password, order, known, probe=probe, gate=gate)
    finally:
        gate.turn.release()


async def _try_mechanisms(
    client: aiosmtplib.SMTP,
    username: str,
    password: str,
    order: list[str],
    known: str | None,
    *,
    probe: bool,
    gate: LoginGate,
) -> str:
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
            if exc.code == CLOSING:
                if refused is not None:
                    break
                # The relay closing, not refusing: said as a 421 to any other command is.
                raise aiosmtplib.SMTPResponseException(exc.code, exc.message) from exc
            refused = exc
            gate.refused(exc, f"{key[0]}:{key[1]}", probe=probe)
            PROBE_TURNS.refused(key, mechanism)
            if exc.code < 500 or mechanism == known:
                break  # 454: failing for now, whatever the mechanism; the known one: our password
            # Even a 535 to PLAIN may be the mechanism's and not the password's (a relay taking
            # LOGIN alone): a send tries the next mechanism.
            continue
        except aiosmtplib.SMTPServerDisconnected:
            if refused is None:
                raise
            break
        PROBE_TURNS.taken(key)
        gate.taken()
        return mechanism
    assert refused is not None
    raise refused
