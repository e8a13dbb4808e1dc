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
it: the relay hung up after it (Exchange does), answers the next AUTH 421, or stays silent or
unreadable, where that 535 was replaced or lost and the probes never backed off; the refusal of the
mechanism the relay last took (our password or account refused, not the mechanism); or a 4xx (454,
RFC 4954: the relay's own authentication failing for now, for every mechanism: `LoginFailingForNow`,
no refusal held, but a failed login all the same, as Postfix logs it for fail2ban). An exchange
stopped at a 334 is cancelled and refused (`gateway.relayauthcancel`). A 421 to the first AUTH is
the relay closing (shutting down, too busy), as to any command: the probes keep their 30 s for it.

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
- while held, the probes alone log in (`gateway.relayprobe`): the mechanism last taken first, always,
  as its refusal is most likely the password's or the account's (an account locked for 15 minutes
  had the probes try in turn mechanisms the relay had refused in a login it then took: mail went 15
  to 45 minutes after the unlock, each such probe one more failed login); after its refusal the
  others offered, never one refused within a login that then took another (until the probes are an
  hour apart), each only while the ten minutes' budget has room (`gateway.relayloginbudget`): a
  relay that stopped taking PLAIN while still offering it, and takes LOGIN, refused every probe
  until a restart. A relay hanging up after the refusal (Exchange) gets the next probe with the
  first of the others, then the one taken again. With none taken yet since the start, one mechanism
  a probe, those offered in turn. A probe logs in no sooner than the probes' back-off after the last
  failed login (60, 120, 240 s... after the first, second, third since one was taken: a send's
  three refusals, or a first probe's three mechanisms, put the next probe four minutes on, the one
  after it eight minutes later; a held probe's further mechanisms are paced by the budget alone),
  nor before the budget has room; a probe before that is stopped without connecting (`LoginHeld`),
  and is no refused probe for the probes' own back-off. So mail flows at the first probe after the
  relay takes our login again;
- a 454 holds no refusal: no login, a send's or a probe's, goes before the probes' back-off after it
  (a send fails at once with it, deferred as the relay's fault, `LoginFailingForNow`), and then the
  next goes, one at a time, as a login after a start does;
- a login taken clears the refusal, and the probe's wake brings the mail back; a restart forgets it,
  so a password fixed in the config goes at once, as the budget has room: its failed logins are
  kept across restarts (`gateway.relayloginkept`). A 454 is over once a login is taken; a mail
  going on a session logged in before ends it for status alone (`mail_taken`), the next login
  still waiting out its back-off. What is held, since when, and the relay's words (one line, our
  password masked: `unsaid`) are in the status file (`gateway.relayloginstatus`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiosmtplib
import structlog

from gateway.relayauthcancel import AUTH_CONTINUE, cancelled
from gateway.relayloginbudget import LoginBudget
from gateway.relaylogincommon import login_order, no_mechanism_in_common
from gateway.relayloginerrors import LoginFailingForNow, LoginHeld, LoginTurnTimeout, failing_for_now
from gateway.relayloginkept import KeptLogins, budget_report, budget_spent
from gateway.relayloginstatus import FAILING, REFUSED, LoginEpisode, login_by, login_secrets, unsaid
from gateway.relayprobepace import PROBE_EVERY_MAX, probes_pace

log = structlog.get_logger(__name__)

CLOSING = 421  # the relay ends the session (RFC 5321 3.8): after a refused login, or for itself
# Logins at once with a mechanism known: three refused at once, then a probe 240 s on and the next
# 480 s after it, are four failed logins in any ten minutes, under fail2ban's five.
LOGINS_AT_ONCE = 3


class RelayLogins:
    """What the logins of one mailer (one relay, one account) know: the mechanism last taken, the
    relay's refusal while it refuses our login, the probes' turn and pace, and whose turn it is."""

    def __init__(self, clock: Callable[[], float], command_timeout: float) -> None:
        self.clock = clock
        self.command_timeout = command_timeout
        self.known: str | None = None  # the mechanism of the last login taken
        self.held: aiosmtplib.SMTPAuthenticationError | None = None
        # A 454 since the last login taken (none held): no login before the probes' back-off after it.
        self.failing: aiosmtplib.SMTPAuthenticationError | None = None
        self.failing_said: set[int] = set()  # the 4xx codes warned of this episode (`failing_now`)
        self.failed = 0  # failed logins since the relay last took one, for the probes' back-off
        self.failed_at = 0.0
        self.budget = LoginBudget()  # every failed login, for the ten minutes' budget
        self.kept: KeptLogins | None = None  # the budget across restarts (`gateway.relayloginkept`)
        self.episode: LoginEpisode | None = None  # the refusal held or the 454s, for status
        self.turn: str | None = None  # the mechanism a probe was last refused, the next goes next
        # Refused within a login that then took another: the mechanism's refusal, not the password's,
        # so no probe's turn goes to it while this mailer lives.
        self.spurned: set[str] = set()
        # The relay hung up after the known one's refusal: the next held probe begins with this one.
        self.lead: str | None = None
        self._going = 0
        self._changed = asyncio.Event()

    def keep(self, kept: KeptLogins) -> None:
        """The budget's failed logins kept from before the start, and each one from now on."""
        self.kept = kept
        kept.restore(self.budget, self.clock())

    def _budget_spent(self) -> bool:
        """No login taken since the start and no room (with none held nor failing: failed logins
        before a restart, `gateway.relayloginkept`); a login taken since has a mechanism that works."""
        return self.known is None and self.budget.room(self.clock()) <= 0

    def next_login_at(self) -> float:
        """When a probe may log in after a refused login: the probes' back-off after as many failed
        logins as were made, whether by one probe, sends, or a first probe's every mechanism, and
        no sooner than the ten minutes' budget has room for one more."""
        return max(self.failed_at + probes_pace(self.failed), self.budget.open_at())

    def check(self, *, probe: bool) -> None:
        """Raises the relay's refusal for a login that is not to go now: a send's while held, a
        probe's before its time (`LoginHeld`); after a 454, any login before its time."""
        if self.held is None and self.failing is None:
            if self._budget_spent():
                raise budget_spent(self.kept, self.budget.open_at() - self.clock(), probe=probe)
            return
        wait = self.next_login_at() - self.clock()
        if self.held is None and wait <= 0:
            return  # the probes' back-off after a 454 is over: the next login goes, a send's too
        cause = self.held or self.failing
        assert cause is not None
        kind = aiosmtplib.SMTPAuthenticationError if self.held is not None else LoginFailingForNow
        said = kind(cause.code, cause.message)
        if not probe:
            raise said
        if wait > 0:
            raise LoginHeld(said, wait)

    def probe_order(self, order: list[str]) -> list[str]:
        """What a probe tries: while nothing is held, what a send would (the whole order, the one
        last taken first and its refusal ending it); while held, the one last taken and then the
        others (those refused within a login that then took another only once the probes are an
        hour apart), or with none taken (or it offered no more), the one after the mechanism the
        last refused probe tried, skipping those refused within a login that then took another."""
        if self.held is None:
            return order
        if self.known in order:
            early = probes_pace(self.failed) < PROBE_EVERY_MAX
            others = [m for m in order if m != self.known and not (early and m in self.spurned)]
            others.sort(key=lambda mechanism: mechanism in self.spurned)  # stable: the login's order
            if self.lead in others:
                others.remove(self.lead)
                return [self.lead, self.known, *others]
            return [self.known, *others]
        turns = [mechanism for mechanism in order if mechanism not in self.spurned] or order
        if self.turn in turns:
            return [turns[(turns.index(self.turn) + 1) % len(turns)]]
        return [turns[0]]

    def goes_on(self, mechanism: str, *, probe: bool) -> bool:
        """Whether a login whose `mechanism` the relay just refused (5xx) tries the next one: not
        after the one it last took, our password refused (but a held probe's does, the relay may have
        stopped taking it), and only while the ten minutes' budget has room for one more beside one
        for each other login on its way (three sends at once each saw room and went on: six failed)."""
        if mechanism == self.known and not (probe and self.held is not None):
            return False
        return self.budget.room(self.clock()) > self._going - 1

    def _sends_fail(self) -> bool:
        """Whether a send fails at once with what is held, without waiting for a turn."""
        return self.held is not None or (self.failing is not None and self.clock() < self.next_login_at())

    def _may_go(self, probe: bool) -> bool:
        """Alone until a login is taken and while the relay refuses ours (a probe's) or fails it for
        now, else three, or as many as the ten minutes' budget has room for (one at least)."""
        if not probe and self._sends_fail():
            return True  # to fail at once with it
        if self.known is None or self.held is not None or self.failing is not None:
            return self._going < 1
        return self._going < max(1, min(LOGINS_AT_ONCE, self.budget.room(self.clock())))

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

    def failed_one(
        self, mechanism: str | None, *, probe: bool, paced: bool = True, answer: Exception | None = None
    ) -> None:
        """One failed login at the relay. `mechanism`: the probes' turn moves past it (None: a 454,
        which judged no mechanism); `paced`: counted for the probes' back-off (a held probe's further
        mechanisms are not: the budget alone paces them)."""
        self.budget.spend(self.clock())
        if self.kept is not None and isinstance(answer, aiosmtplib.SMTPResponseException):
            self.kept.spent(answer.code, f"{answer.code} {answer.message}")
        if paced:
            self.failed += 1
            self.failed_at = self.clock()
        if probe and mechanism is not None:
            self.turn = mechanism

    def refused(
        self,
        exc: aiosmtplib.SMTPAuthenticationError,
        relay: str,
        tried: list[str],
        *,
        probe: bool,
        reply: str,
        lead: str | None = None,
    ) -> None:
        """A login refused whole: sends fail at once with it until a probe's login is taken."""
        if self.held is None:
            log.warning(
                "mail.relay_login_refused",
                relay=relay,
                reply=reply,
                mechanism=tried[-1],
                by=login_by(probe),
                note="no mail logs in until a probe's login is taken (the probes back off to an hour);"
                " a password fixed in the config goes at once after a restart",
            )
            self.episode = LoginEpisode(REFUSED, self.clock(), login_by(probe))
            self.failing_said.clear()
        assert self.episode is not None
        self.episode.saw(tried, reply, self.clock())
        self.held, self.failing, self.lead = exc, None, lead

    def failing_now(
        self, exc: aiosmtplib.SMTPAuthenticationError, relay: str, mechanism: str, *, probe: bool, reply: str
    ) -> None:
        """A 454: the relay's authentication failing for now. No refusal of ours held (one held stays).

        Each code warned once until a login is taken or a refusal or no mechanism in common is warned
        of: a mail going on a kept session ends the episode for status alone (`mail_taken`), and each
        454 the probes' back-off let through was warned anew; 454 and 432 alternating, at each login."""
        if self.held is not None:
            return
        if exc.code not in self.failing_said:
            self.failing_said.add(exc.code)
            log.warning(
                "mail.relay_login_failing",
                relay=relay,
                reply=reply,
                by=login_by(probe),
                note="the relay's own authentication fails for now (RFC 4954 454), not our password: mail"
                " stays queued; the next login goes after the probes' back-off",
            )
        if self.episode is None or self.episode.state != FAILING:  # none, or said over by a mail taken
            self.episode = LoginEpisode(FAILING, self.clock(), login_by(probe))
        assert self.episode is not None
        self.episode.saw([mechanism], reply, self.clock())
        self.failing = exc

    def taken(self, mechanism: str, relay: str, refused: list[str]) -> None:
        """A login taken with `mechanism` after `refused` (5xx to each, in this login)."""
        if self.held is not None or self.failing is not None:
            log.info("mail.relay_login_taken", relay=relay, mechanism=mechanism, note="mail logs in again")
        self.known = mechanism
        self.spurned.update(refused)
        self.spurned.discard(mechanism)
        self.held = self.failing = self.episode = self.lead = None
        self.failing_said.clear()
        self.failed, self.turn = 0, None

    def mail_taken(self) -> None:
        """A mail the relay took, on a session logged in before: the relay's 454s (or its offering
        no mechanism we speak) are over for status. The 454's gate stays: a mail taken on a kept
        session says nothing of the relay's authentication, and clearing it let one more login go
        at each mail, past the probes' back-off and the ten minutes' budget (eight failed logins in
        eight seconds). A refusal held stays: no send logs in until a probe's login is taken."""
        if self.held is None:
            self.episode = None

    def report(self) -> dict[str, object] | None:
        """What `smsgw status` shows while a refusal is held, the relay's authentication fails, no
        login can go (no mechanism in common), or the budget waits after a restart."""
        if self.episode is None:
            return budget_report(self.kept, self.budget, self.clock()) if self._budget_spent() else None
        return self.episode.report(self.clock(), self.next_login_at(), self.failed)


async def greet(client: aiosmtplib.SMTP) -> None:
    """EHLO, or HELO to a relay without ESMTP, which a send's transaction goes on with too."""
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        await client.helo()


async def log_in(
    client: aiosmtplib.SMTP, username: str, password: str, *, probe: bool, logins: RelayLogins
) -> None:
    """Logs in, raising the relay's refusal (with no mechanism in common, `NoLoginInCommon`), or the
    one `logins` holds without trying. The order is read once the turn is taken: a login waiting
    for the first one tries the mechanism that one found."""
    if client.is_ehlo_or_helo_needed:
        await greet(client)  # no ESMTP: no AUTH either, which `login` says
    if not client.supported_auth_methods:
        raise no_mechanism_in_common(client, logins, probe=probe)
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
    secrets = login_secrets(username, password)
    refused: aiosmtplib.SMTPAuthenticationError | None = None
    tried: list[str] = []
    held = probe and logins.held is not None  # a held probe: its further mechanisms are not paced
    closed = False  # the relay hung up (or answered 421) after a refusal
    for mechanism in order:
        if refused is not None and not client.is_connected:
            closed = True
            break  # hung up after its refusal: that refusal says why, not the closed connection
        try:
            await getattr(client, f"auth_{mechanism.replace('-', '')}")(username, password)
        except aiosmtplib.SMTPResponseException as exc:
            answer: Exception = unsaid(exc, secrets)  # handled and raised from here on, never `exc`
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
            answer = exc
        else:
            logins.taken(mechanism, relay, tried)
            return
        if not isinstance(answer, aiosmtplib.SMTPAuthenticationError):
            # Gone, silent or unreadable: an earlier refusal says why; a probe's turn moves past it.
            if probe and isinstance(answer, aiosmtplib.SMTPResponseException):
                logins.turn = mechanism
            if refused is None:
                raise answer
            closed = True
            break
        if answer.code == AUTH_CONTINUE:  # an exchange we cannot go on with: no 454 (`relayauthcancel`)
            answer = await cancelled(client, mechanism, answer, secrets)
        if answer.code == CLOSING:
            if refused is not None:
                closed = True
                break
            # The relay closing, not refusing: said as a 421 to any other command is.
            raise aiosmtplib.SMTPResponseException(answer.code, answer.message)
        reply = f"{answer.code} {answer.message}"
        if failing_for_now(answer.code):
            # 454: failing for now, whatever the mechanism, and no word on our password.
            logins.failed_one(None, probe=probe, paced=not (held and tried), answer=answer)
            logins.failing_now(answer, relay, mechanism, probe=probe, reply=reply)
            raise LoginFailingForNow(answer.code, answer.message)
        logins.failed_one(mechanism, probe=probe, paced=not (held and tried), answer=answer)
        refused = answer
        tried.append(mechanism)
        if not logins.goes_on(mechanism, probe=probe):
            break  # the known one: our password; or the budget spent
        # A 535 to PLAIN may be the mechanism's, not the password's (a relay taking LOGIN alone).
    assert refused is not None
    untried = [mechanism for mechanism in order if mechanism not in tried]
    lead = untried[0] if held and closed and tried[-1] == logins.known and untried else None
    logins.refused(refused, relay, tried, probe=probe, reply=f"{refused.code} {refused.message}", lead=lead)
    raise refused
