"""The relay back after an outage: mail deferred for its faults goes as soon as it answers again.

A send the relay takes wakes that mail (`RelayBack.back`), but with nothing else to send the relay
was never tried until the deferred mail's own back-off ran out: an answer from a phone went 87 s
after a 130 s outage was over, half an hour late after one of 30 minutes, up to an hour after a
long one. So while such mail waits and no send is going, the relay is probed every `PROBE_EVERY`
seconds with a session that sends nothing (`SmtpRelayMailer.probe`: connect, EHLO, STARTTLS and
AUTH as a send does them, QUIT); once it answers, the mail deferred first is due at once, and its
send, taken, wakes the rest. One mail, not all: a relay that greets but still fails a send costs
one attempt, and the probes after such a wake wait twice as long each time, up to an hour, so that
the relay's answers to a probe cannot spend the five days' attempts of the deferred mail.
The first probe goes at the start: a relay fixed in the config and restarted is found at once,
and one still down costs no mail an attempt however often the daemon restarts (a mail sent to find
out cost one at each start). A probe the relay refuses our login or TLS is a failed login at the
relay, which locks accounts and bans addresses: the probes after it back off too
(`gateway.relayprobepace`), as after a 454 to AUTH. A probe logs in as a send does until a login is
refused; then each costs the relay one failed login, the mechanism last taken (and after its
refusal the others offered, while the ten minutes' budget has room; with none taken since the
start, the others in turn from one refused probe to the next: `gateway.mailauth`), no sooner than
that back-off after the last failed login (a send's, or a first probe's every mechanism); one
stopped before that connects to nothing and counts as no refused probe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from gateway.bitelog import FaultLog
from gateway.relayfaults import probe_relay_faults, relay_fault, waits_for_relay, wake_relay_faults
from gateway.relayloginerrors import LoginHeld
from gateway.relayloginstatus import relay_secrets
from gateway.relayprobepace import BACKS_OFF, PROBE_EVERY_MAX, probes_pace
from gateway.secretmask import Secrets, unsaid_line
from gateway.store.commit import store_trouble
from gateway.store.db import Store

log = structlog.get_logger(__name__)

HELD_FLOOR_SECONDS = 1.0  # the shortest wait for a probe the mailer held back


def probe_failure(task: asyncio.Task[None], *, unless: BaseException | None = None) -> BaseException | None:
    """The probe's end by an error (logged), which ends the outbox worker once its sends are recorded,
    for the supervisor to start both again; None while it runs or when it ended well, or was cancelled.

    Read only when the worker ended, the error was swallowed with the cancel of the others: a
    capture directory's wake-up at the start that failed (a lock held past the write's patience) left
    the mail deferred for the old relay waiting out its back-off of up to an hour, with no word."""
    if not task.done() or task.cancelled() or (exc := task.exception()) is None or exc is unless:
        return None
    log.error(
        "outbox.relay_probe_ended",
        error=f"{type(exc).__name__}: {exc}"[:500],
        note="the outbox worker ends and is started again with it",
        exc_info=exc,
    )
    return exc


class RelayBack:
    """Whether a relay fault deferred mail since the relay last took one, and the wake-up of that
    mail: by a send taken (`back`), or by a probe while nothing is sent (`run`)."""

    def __init__(self, store: Store, mailer: object, wake: Callable[[], None], faults: FaultLog) -> None:
        self.store = store
        # The SMTP relay's (`SmtpRelayMailer.probe`); a capture directory has none.
        self.probe: Callable[[], Awaitable[None]] | None = getattr(mailer, "probe", None)
        self.wake = wake
        self.faults = faults  # the worker's rate-limited log of repeated failures
        # The relay password's forms: a probe's failure is logged with them masked, before the cut
        # to 200 characters that would leave a part of one the log's own masking cannot find.
        self.secrets = Secrets.of(relay_secrets(mailer))
        # A relay fault deferred mail since the last success (or before this start, unknown): the
        # next success makes it due again (`wake_relay_faults`).
        self.faulted = True
        self._probe_wakes = 0  # mail a probe woke since the relay last took a mail
        # Probes refused our setup (login, TLS) since one last got through or the relay took a mail:
        # a relay down in between changes nothing of it, so only a success clears it.
        self._refused = 0
        # The last probe was stopped before its time (`LoginHeld`): the next goes at that time, not
        # on the probes' own pace, which after a first probe's three failed logins ran behind it.
        self._held_for: float | None = None

    async def back(self) -> None:
        """The relay took a mail: what waited out a back-off for its faults goes now (mail waited up
        to an hour after a 30-min outage, though the relay was back)."""
        self.faulted = False  # before the write: a fault meanwhile is seen by the next success
        self._probe_wakes = 0
        self._refused = 0
        outbox = self.store.outbox
        try:
            due = await self.store.write(lambda: wake_relay_faults(outbox))
        except Exception as exc:
            if not store_trouble(exc) or self.store.db.replaced is not None:
                raise
            self.faulted = True  # the next success tries again; this send is recorded already
            self.faults.warning("outbox.relay_back_unwritten", exc, error=repr(exc)[:200])
            return
        if due:
            log.info("outbox.relay_back", due_again=due, note="mail deferred for the relay's faults goes now")
            self.wake()

    def interval(self) -> float:
        """The wait before the next probe: PROBE_EVERY, twice as long for each mail a probe woke in
        vain and each probe refused our setup, up to an hour; after a probe stopped before its time,
        until that time."""
        if self._held_for is not None:
            # At least a second: a timer firing a little early met a wait of a fraction of a
            # millisecond, and the loop went round on it reading the store each time.
            return max(self._held_for, HELD_FLOOR_SECONDS)
        return probes_pace(self._probe_wakes + self._refused)

    async def run(self, sending: Callable[[], bool]) -> None:
        """Probes the relay while mail waits for it and `sending()` is false (a send going says
        itself whether the relay is back), until cancelled with the worker."""
        if self.probe is None:  # a capture directory: no relay to probe, and none down
            outbox = self.store.outbox
            if (mail := await self.store.write(lambda: probe_relay_faults(outbox))) is not None:
                log.info("outbox.relay_answers", mail=mail, note="mail deferred for the old relay's goes now")
                self.wake()
            return
        first = True  # at the start: a relay fixed in the config and restarted is found at once
        while True:
            if not first:
                wait = self.interval()
                self._held_for = None  # a held probe's time serves one wait, not each after it
                await asyncio.sleep(wait)
            first = False
            if sending():
                continue
            try:
                if waits_for_relay(self.store.outbox):
                    await self._probe()
            except Exception as exc:  # the store's trouble: the next probe looks again
                self.faults.warning("outbox.relay_probe_unread", exc, error=repr(exc)[:200])

    async def _probe(self) -> None:
        assert self.probe is not None
        self._held_for = None
        try:
            await self.probe()
        except LoginHeld as held:
            # Stopped before its time after a send's refused login, without connecting: no failed
            # login, so no refused probe either (counted, the probes after a 60 s lock went 451 s on).
            self._held_for = held.wait
            log.debug("outbox.relay_probe_held", next_login_in=round(held.wait, 1))
            return
        except Exception as exc:
            # Still down: the mail's deferral said so already, and says it again at its next try.
            kind = relay_fault(exc)
            if kind in BACKS_OFF and self.interval() < PROBE_EVERY_MAX:
                self._refused += 1
            log.debug(
                "outbox.relay_probe_failed",
                error=unsaid_line(repr(exc), self.secrets, 200),
                relay_fault=kind,
                next_probe_in=self.interval(),
            )
            return
        self._refused = 0
        outbox = self.store.outbox
        mail = await self.store.write(lambda: probe_relay_faults(outbox, probed=True))
        if mail is None:
            return
        self._probe_wakes += 1
        log.info(
            "outbox.relay_answers",
            mail=mail,
            note="the relay answers again: the mail deferred for its faults first goes now, the rest"
            " once it is taken",
        )
        self.wake()
