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
it: the relay hung up after it (Exchange does, after a failed AUTH) or answers the next AUTH 421,
where the next mechanism was tried on the closed connection and its "connection lost" replaced the
535, so the probes never backed off; the mechanism refused is the one the relay last took (the
password or the account is refused, not the mechanism); or the refusal is a 4xx (454: the relay's
own authentication service failing for now, as for every mechanism). A 454 still counts as a failed
login: Postfix logs it as the same failed SASL login that fail2ban counts. A 421 to the first AUTH is
no refusal: the relay closing (shutting down, too busy), a fault of the relay's like a 421 to any
command, which the probes keep probing every 30 s for.

The logins of a mailer share what they learn (`RelayLogins`). Each send tried its own: with a wrong
password and three mails queued, each mail on its own outbox slot and back-off cost the relay every
mechanism offered, 29 failed logins in 100 s, where fail2ban bans the gateway's address at five in
ten minutes and Exchange locks the account. So:
- until a login is taken after a start, logins go one at a time: the mails due at once wait for the
  first login's answer, and go on together with the mechanism it found (eight sends each trying
  CRAM-MD5 first at a relay refusing it were eight failed logins at once);
- once one is taken, sends log in three at a time at most, the mechanism taken first: a relay that
  then refuses our password (an account locked, a password changed) costs three failed logins at
  once, not one a send slot, and with the probes' pace below never five in ten minutes;
- a login the relay refused whole (every mechanism tried, or the one it last took, or a held probe's one)
  holds the relay's refusal: no send logs in, each fails at once with it, deferred as before (one
  attempt of the mail, on its own back-off) without connecting, said once in the log. A mechanism
  refused within a login that then is taken holds nothing: sends starting meanwhile went on;
- a probe while nothing is held logs in as a send does (after a start, every mechanism in turn: it
  goes alone anyway, and a probe of CRAM-MD5 alone, refused by a relay keeping hashed passwords,
  held every send of a healthy relay for a minute, with a warning and mail deferred);
- while held, the probes alone log in (`gateway.relayprobe`), one mechanism each: the one last taken,
  always, as its refusal is the password's or the account's (an account locked for 15 minutes had
  the probes try in turn mechanisms the relay had refused in a login it then took: mail went 15 to
  45 minutes after the unlock, each such probe one more failed login); with none taken yet since the
  start, the mechanisms offered in turn, never one refused within a login that then took another. A
  probe logs in no sooner than the probes' back-off after the last failed login (60, 120, 240 s...
  after the first, second, third since one was taken: a send's three refusals, or a first probe's
  three mechanisms, put the next probe four minutes on, the one after it eight minutes later); a
  probe before that is stopped without connecting (`LoginHeld`), and is no refused probe for the
  probes' own back-off. So mail flows at the first probe after the relay takes our login again;
- a login taken clears the refusal, and the probe's wake brings the mail back; a restart forgets it,
  so a password fixed in the config goes at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiosmtplib
import structlog

from gateway.relayprobepace import probes_pace

log = structlog.get_logger(__name__)

# The mechanisms that hand the relay the password itself, which TLS makes as safe as CRAM-MD5.
CLEAR_PASSWORD = frozenset({"plain", "login"})
CLOSING = 421  # the relay ends the session (RFC 5321 3.8): after a refused login, or for itself
# Logins at once with a mechanism known: three refused at once, then a probe 240 s on and the next
# 480 s after it, are four failed logins in any ten minutes, under fail2ban's five.
LOGINS_AT_ONCE = 3


class LoginHeld(Exception):
    """A probe stopped before its time by the relay's refusal of a send's login, without connecting:
    no failed login at the relay, so none for the probes' back-off either."""

    def __init__(self, refusal: aiosmtplib.SMTPAuthenticationError, wait: float) -> None:
        super().__init__(f"{refusal.code} {refusal.message}; the next login in {wait:.0f} s")
        self.wait = wait


class LoginTurnTimeout(aiosmtplib.SMTPTimeoutError):
    """A send that waited for its turn longer than one login takes: the login going before it (the
    gateway's own first after a start) kept waiting for the relay's answers. Said and kept as the
    relay's timeout (`SMTPTimeoutError`), so that the mail goes again as soon as the relay takes a
    mail, not after its own back-off of up to an hour (mail deferred for an outage is far into it)."""

    def __repr__(self) -> str:
        return f"SMTPTimeoutError({str(self)!r})"  # the kind the outbox keeps (`relayfaultkinds`)


class RelayLogins:
    """What the logins of one mailer (one relay, one account) know: the mechanism last taken, the
    relay's refusal while it refuses our login, the probes' turn and pace, and whose turn it is."""

    def __init__(self, clock: Callable[[], float], command_timeout: float) -> None:
        self.clock = clock
        self.command_timeout = command_timeout
        self.known: str | None = None  # the mechanism of the last login taken
        self.held: aiosmtplib.SMTPAuthenticationError | None = None
        self.failed = 0  # failed logins since the relay last took one
        self.failed_at = 0.0
        self.turn: str | None = None  # the mechanism a probe was last refused, the next goes next
        # Refused within a login that then took another: the mechanism's refusal, not the password's,
        # so no probe's turn goes to it while this mailer lives.
        self.spurned: set[str] = set()
        self._going = 0
        self._changed = asyncio.Event()

    def next_login_at(self) -> float:
        """When a probe may log in after a refused login: the probes' back-off after as many failed
        logins as were made, whether by one probe, sends, or a first probe's every mechanism."""
        return self.failed_at + probes_pace(self.failed)

    def check(self, *, probe: bool) -> None:
        """Raises the relay's refusal for a login that is not to go now: a send's while held, a
        probe's before its time (`LoginHeld`)."""
        if self.held is None:
            return
        said = aiosmtplib.SMTPAuthenticationError(self.held.code, self.held.message)
        if not probe:
            raise said
        if (wait := self.next_login_at() - self.clock()) > 0:
            raise LoginHeld(said, wait)

    def probe_order(self, order: list[str]) -> list[str]:
        """What a probe tries: while nothing is held, what a send would (the whole order, the one
        last taken first and its refusal ending it); while held, one mechanism: the one last taken,
        or with none taken (or it offered no more), the one after the mechanism the last refused
        probe tried, skipping those refused within a login that then took another."""
        if self.held is None:
            return order
        if self.known in order:
            return [self.known]
        turns = [mechanism for mechanism in order if mechanism not in self.spurned] or order
        if self.turn in turns:
            return [turns[(turns.index(self.turn) + 1) % len(turns)]]
        return [turns[0]]

    def _may_go(self, probe: bool) -> bool:
        """Alone until a login is taken and while the relay refuses ours (a probe's), else three."""
        if self.held is not None and not probe:
            return True  # to fail at once with it
        return self._going < (LOGINS_AT_ONCE if self.known is not None and self.held is None else 1)

    async def take_turn(self, *, probe: bool, mechanisms: int) -> None:
        """Waits while the first login after a start goes (or three with a mechanism known), at most
        as long as one login takes: each mechanism's answer within the command timeout, and one more."""
        wait = self.command_timeout * (mechanisms + 1)
        try:
            async with asyncio.timeout(wait):
                while not self._may_go(probe):
                    await self._changed.wait()
        except TimeoutError:
            what = "first login to the relay" if self.known is None else "logins to the relay before it"
            raise LoginTurnTimeout(f"waited {wait:g} s for the gateway's own {what}") from None
        self._going += 1

    def end_turn(self) -> None:
        self._going -= 1
        self._changed.set()
        self._changed = asyncio.Event()

    def failed_one(self, mechanism: str, *, probe: bool) -> None:
        self.failed += 1
        self.failed_at = self.clock()
        if probe:
            self.turn = mechanism

    def refused(
        self, exc: aiosmtplib.SMTPAuthenticationError, relay: str, mechanism: str, *, probe: bool
    ) -> None:
        """A login refused whole: sends fail at once with it until a probe's login is taken."""
        if self.held is None:
            log.warning(
                "mail.relay_login_refused",
                relay=relay,
                reply=f"{exc.code} {exc.message}",
                mechanism=mechanism,
                by="a probe" if probe else "a send",
                note="no mail logs in until a probe's login is taken (the probes back off to an hour);"
                " a password fixed in the config goes at once after a restart",
            )
        self.held = exc

    def taken(self, mechanism: str, relay: str, refused: list[str]) -> None:
        """A login taken with `mechanism` after `refused` (5xx to each, in this login)."""
        if self.held is not None:
            log.info("mail.relay_login_taken", relay=relay, mechanism=mechanism, note="mail logs in again")
        self.known = mechanism
        self.spurned.update(refused)
        self.spurned.discard(mechanism)
        self.held = None
        self.failed = 0
        self.turn = None


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
    client: aiosmtplib.SMTP, username: str, password: str, *, probe: bool, logins: RelayLogins
) -> None:
    """Logs in, raising the relay's refusal (with no mechanism offered, `login`'s own error), or the
    one `logins` holds without trying. The order is read once the turn is taken: a login waiting
    for the first one tries the mechanism that one found."""
    if client.is_ehlo_or_helo_needed:
        await greet(client)  # no ESMTP: no AUTH either, which `login` says
    if not client.supported_auth_methods:
        await client.login(username, password)
        return
    await logins.take_turn(probe=probe, mechanisms=len(client.supported_auth_methods))
    try:
        logins.check(probe=probe)
        order = login_order(client, logins.known)
        if probe:
            order = logins.probe_order(order)
        await _try_mechanisms(client, username, password, order, probe=probe, logins=logins)
    finally:
        logins.end_turn()


async def _try_mechanisms(
    client: aiosmtplib.SMTP,
    username: str,
    password: str,
    order: list[str],
    *,
    probe: bool,
    logins: RelayLogins,
) -> None:
    relay = f"{client.hostname}:{client.port}"
    refused: aiosmtplib.SMTPAuthenticationError | None = None
    last = order[0]
    tried: list[str] = []
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
            refused, last = exc, mechanism
            tried.append(mechanism)
            logins.failed_one(mechanism, probe=probe)
            if exc.code < 500 or mechanism == logins.known:
                break  # 454: failing for now, whatever the mechanism; the known one: our password
            # Even a 535 to PLAIN may be the mechanism's and not the password's (a relay taking
            # LOGIN alone): a send tries the next mechanism.
            continue
        except aiosmtplib.SMTPServerDisconnected:
            if refused is None:
                raise
            break
        logins.taken(mechanism, relay, tried)
        return
    assert refused is not None
    logins.refused(refused, relay, last, probe=probe)
    raise refused
