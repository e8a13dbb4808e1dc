"""The outbox worker: mail leaves only from the outbox table, with the same claim/finish pattern as
SMS parts. A mail is claimed, handed to the relay (`gateway.mailer`), and marked sent only after
the relay's `250`; a temporary failure backs off, a permanent one (5xx) or too many attempts marks
it failed and logs it for the admin. A relay that took the whole mail but never answered it may
have delivered it: such a mail is sent again a few times at most, each time logged as a possible
duplicate (`UNANSWERED_SENDS`). An outcome the store refuses (a full disk) is kept and written
again until it is on disk (`gateway.outboxrecord`); which failures are the relay's own is
`gateway.relayfaults`, and what wakes the mail deferred for them `gateway.relayprobe`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import structlog
from aiosmtplib import SMTPRecipientsRefused, SMTPResponseException

from gateway.bitelog import FaultLog
from gateway.logging import hide_values
from gateway.mailer import LONGEST_SEND_SECONDS, OUTBOX_MAIL, Mailer
from gateway.mailtransaction import SEND_MARK, PermanentMailError, PossiblyDeliveredError, SendMark
from gateway.outboxbatch import (
    ANSWERED_KEPT,
    UNANSWERED_SENDS,
    About,
    MailLog,
    Outcome,
    error_text,
    mail_retry_delay,
    record_outcome,
    unanswered_outcome,
)
from gateway.outboxrecord import OutcomeWriter
from gateway.privacy.erasure import ERASED_MAIL, NOT_SENT
from gateway.relayfaults import relay_fault
from gateway.relayprobe import RelayBack, probe_failure
from gateway.secretmask import unsaid_line
from gateway.store.commit import store_trouble
from gateway.store.db import Store
from gateway.store.outbox import ClaimedMail
from gateway.supervisor import beat

log = structlog.get_logger(__name__)


# How long a stop waits for the sends in progress to be answered and recorded: a send cut off is
# sent again by the next start (the relay may then deliver it twice). Within systemd's
# TimeoutStopSec (systemd/smsgw.service) after the links' own wait.
STOP_WAIT_SECONDS = 30.0


IDLE_LOOK = 5.0  # seconds between looks for mail due while nothing wakes the worker
OTHER_PROCESS_LOOK = 0.5  # seconds between looks for another process's commit while idle


# The worker is silent while every slot waits for a send; a send's own bound, and the store's
# writes around it, are no hang (the supervisor withholds systemd's watchdog past this).
STALL_AFTER_SECONDS = LONGEST_SEND_SECONDS + 60.0


# A relay's own answer to a send (not a connection's failure): the relay is up, whatever it said.
ANSWERS = (SMTPResponseException, SMTPRecipientsRefused)


class OutboxWorker:
    stall_after = STALL_AFTER_SECONDS

    def __init__(
        self, store: Store, mailer: Mailer, *, max_attempts: int = 125, concurrency: int = 8
    ) -> None:
        self.store = store
        self.mailer = mailer
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._stopping = False
        self._idle = asyncio.Event()  # clear while mail is claimed and not yet all recorded
        self._idle.set()
        self._in_flight: list[int] = []  # the mail ids being sent, named if a stop has to give up on them
        self._marks: dict[int, SendMark] = {}  # whether each send's final dot has gone
        self._short = False  # the last claim took less than it asked for, though mail may be due
        self._claim_version = -1  # `PRAGMA data_version` before the last claim (`_idle_wait`)
        # A relay down defers every mail at each try: one line per kind of error a second, with
        # `suppressed=N`, not one per mail (42 mails made 83 lines in 70 s). On the store's clock, as
        # the back-off: a mail's tries a back-off apart are never one flood.
        self._deferred_log = FaultLog(MailLog(), clock=store.clock)
        self.relay = RelayBack(store, mailer, self.wake, self._deferred_log)  # mail waiting for the relay
        self._outcomes = OutcomeWriter(store)  # the relay's answers not yet on disk
        # Recipients whose last send the relay answered: their due mail may take more than one slot
        # (`gateway.store.outboxclaim`); one not answered, or never yet, gets one mail at a time.
        self._answered: set[str] = set()
        self._running: Counter[str] = Counter()  # recipient -> mails being sent to it
        # The relay password's forms, masked in every error kept or logged (`gateway.secretmask`): the
        # probe's, which masks its own failures with them.
        self._secrets = self.relay.secrets

    def wake(self) -> None:
        self._wake.set()

    def _kept(self, error: str) -> str:
        """A failed send's error as the outbox keeps and the log says it: one plain line (a relay's
        reply with CR, LF or a terminal's escape printed as several lines by `smsgw outbox list`),
        the relay password masked where the relay echoed it in any reply of the session."""
        return unsaid_line(error, self._secrets)

    async def run(self) -> None:
        """Up to `concurrency` sends at a time; a send that ends frees its slot for the next mail due.

        The mail of a claim was sent whole before the next claim: one mail whose relay answered slowly
        (a content filter; the final dot's answer is waited for up to DOT_REPLY_TIMEOUT) held back
        every answer and bounce queued meanwhile. Every send claimed ends and is recorded before a
        failure is raised or a stop lets go: a send left running would be sent again by the
        restart's recovery. While it runs the log masks the relay password too, in whatever line
        would carry it (`gateway.logging.hide_values`).
        """
        hide_values(self, self._secrets.forms)
        try:
            await self._run()
        finally:
            hide_values(self, ())

    async def _run(self) -> None:
        sending: dict[asyncio.Task[None], int] = {}
        failure: BaseException | None = None
        looking: asyncio.Task[None] | None = None
        probe = self.relay.run(lambda: bool(sending) or self._stopping)
        probing = asyncio.create_task(probe, name="outbox.relay_probe")
        probing.add_done_callback(lambda _task: self.wake())  # its failure is read in the next turn
        try:
            while sending or (failure is None and not self._stopping):
                beat()
                if failure is None:
                    failure = probe_failure(probing)  # raised once the sends in flight are recorded
                claiming = failure is None and not self._stopping and len(sending) < self.concurrency
                if claiming:
                    try:
                        sending.update(await self._claim(self.concurrency - len(sending)))
                    except Exception as exc:  # raised once the sends in flight are recorded
                        failure, claiming = exc, False
                self._track(sending)
                free = claiming and len(sending) < self.concurrency
                if not sending:
                    if free:
                        await self._idle_wait(self._look_timeout())
                    continue
                waits: set[asyncio.Task[None]] = set(sending)
                if free:  # mail queued or coming due meanwhile takes a free slot at once
                    looking = asyncio.create_task(self._idle_wait(self._look_timeout()))
                    waits.add(looking)
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    sending.pop(task, None)
                    # Read from every task (asyncio logs each one not read as "never retrieved");
                    # the first is raised once the others are recorded, the rest said here.
                    exc = task.exception()
                    if exc is not None and failure is not None:
                        said = self._kept(repr(exc))
                        log.warning("outbox.send_failed_too", task=task.get_name(), error=said)
                    failure = failure or exc
                if looking is not None:
                    looking.cancel()
                    looking = None
            if failure is not None:
                raise failure
        finally:
            probing.cancel()
            if looking is not None:
                looking.cancel()
            for task in sending:
                task.cancel()  # the worker itself was cancelled: a stop gave up, or the daemon ends
            await asyncio.gather(*sending, probing, return_exceptions=True)
            probe_failure(probing, unless=failure)  # one of its own after another failure: said, not raised
            self._track({})

    async def _claim(self, free: int) -> dict[asyncio.Task[None], int]:
        # Busy from the claim on: mail claimed is sent and recorded before a stop lets go.
        self._idle.clear()
        self._wake.clear()  # what was queued before the claim is in it
        self._claim_version = self._data_version()  # another process's commit after it: a look more
        answered, share = self._answered, max(1, self.concurrency - 1)  # a slot left for the others
        running = Counter(self._running)
        claim = self.store.outbox.claim_mail
        mails = await self.store.write(lambda: claim(free, answered, running, share))
        # Mail due may wait for a send to its recipient (`gateway.store.outboxclaim`): the next
        # claim is at a send's end, at new mail, or when mail comes due, not at once and again.
        self._short = len(mails) < free
        return {asyncio.create_task(self._send(mail), name=f"outbox-{mail.id}"): mail.id for mail in mails}

    def _track(self, sending: dict[asyncio.Task[None], int]) -> None:
        self._in_flight = sorted(sending.values())
        if sending:
            self._idle.clear()
        else:
            self._idle.set()

    def _look_timeout(self) -> float:
        due = self.store.outbox.next_mail_due_at(after=self.store.clock() if self._short else None)
        return IDLE_LOOK if due is None else min(max(due - self.store.clock(), 0.05), IDLE_LOOK)

    async def _idle_wait(self, timeout: float) -> None:
        """Until woken (a commit of this process queued mail) or `timeout`, or until another
        process committed since the last claim began (`PRAGMA data_version`, read on the loop's
        connection twice a second): mail a command queued (`premium add`'s confirmation, `billing
        run --send`) waited for the next look, up to 5 s. Compared with what the claim saw, not with
        a reading here: a command's commit between the claim and this wait was in neither."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        seen = self._claim_version
        while (left := end - loop.time()) > 0:
            try:
                await asyncio.wait_for(self._wake.wait(), min(left, OTHER_PROCESS_LOOK))
                return
            except TimeoutError:
                pass
            if self._data_version() != seen:
                return

    def _data_version(self) -> int:
        return int(self.store.db.conn.execute("PRAGMA data_version").fetchone()[0])

    async def _send(self, mail: ClaimedMail) -> None:
        """One mail to the relay on this slot's kept session, and its outcome recorded."""
        self._running[mail.rcpt] += 1
        try:
            outcome = await self._attempt(mail)
            if outcome is not None:
                await self._record(outcome)
        finally:
            self._running[mail.rcpt] -= 1
            if not self._running[mail.rcpt]:
                del self._running[mail.rcpt]

    async def _record(self, outcome: Outcome) -> None:
        """The outcome on disk, then logged; a mail taken, or refused for its recipient, tells that
        the relay works again."""
        outbox = self.store.outbox
        recorded = await self._write(outcome.mail.id, outcome.state, lambda: record_outcome(outbox, outcome))
        if recorded and outcome.said is not None:
            outcome.said(outcome.about)
        if self.relay.faulted and (outcome.state == "sent" or outcome.relay_answered):
            await self.relay.back()

    async def _write(self, mail_id: int, state: str, record: Callable[[], bool]) -> bool:
        """A send's outcome (`state`) on disk, whatever the store's trouble meanwhile: the relay's
        answer is known, and the mail must not go again for want of its record."""
        return await self._outcomes.write(mail_id, state, record)

    async def _attempt(self, mail: ClaimedMail) -> Outcome | None:
        """The mail to the relay, and what became of it, to be recorded; None: an erased mail,
        failed in a write of its own."""
        mail_id, kind, mail_from, rcpt, content, attempts = mail[:6]
        unanswered = mail.unanswered
        if content == ERASED_MAIL:  # the marker alone, no header: never the recipient's mail
            await self._fail_erased(mail_id)
            log.warning("mail.not_sent", mail=mail_id, kind=kind, to=rcpt, reason=NOT_SENT)
            return None
        if mail.maybe_sent:
            log.warning(
                "outbox.possible_duplicate",
                mail=mail_id,
                kind=kind,
                to=rcpt,
                note=f"sent again: the relay took it {unanswered} time(s) without answering"
                if unanswered
                else "sent again: an earlier send was cut off (stop or crash) and may have reached the relay",
            )
        SEND_MARK.set(mark := SendMark())
        OUTBOX_MAIL.set(mail_id)  # a maildir names its file by it: a re-send finds the first
        self._marks[mail_id] = mark
        try:
            await self.mailer.send(mail_from, rcpt, content)
        except PermanentMailError as exc:
            answered, error = relay_fault(exc) is None, self._kept(str(exc))

            def failed(about: About, error: str = error) -> None:
                log.error("mail.failed", mail=mail_id, kind=kind, to=rcpt, error=error, **about)

            return Outcome(mail, "failed", error, named=True, said=failed, relay_answered=answered)
        except PossiblyDeliveredError as exc:
            self._answered.discard(rcpt)
            delay = mail_retry_delay(attempts)
            return unanswered_outcome(mail, unanswered + 1, self._kept(str(exc)), self.max_attempts, delay)
        except Exception as exc:
            self._answered.discard(rcpt)
            error = self._kept(error_text(exc))
            if attempts >= self.max_attempts:

                def gave_up(about: About) -> None:
                    log.error("mail.failed", mail=mail_id, kind=kind, to=rcpt, error=error, attempts=attempts,
                              **about)  # fmt: skip

                return Outcome(mail, "failed", error, named=True, said=gave_up)
            delay = mail_retry_delay(attempts)
            fault = relay_fault(exc)
            if fault is not None:
                self.relay.faulted = True

            def deferred(_about: About, exc: Exception = exc) -> None:
                self._deferred_log.warning(
                    "mail.deferred", exc, mail=mail_id, mail_kind=kind, to=rcpt, error=error,
                    retry_in=delay, relay_fault=fault,
                )  # fmt: skip

            answered = fault is None and isinstance(exc, ANSWERS)  # the recipient's 4xx, greylisting
            return Outcome(mail, "queued", error, retry_in=delay, said=deferred, relay_answered=answered)
        else:
            if len(self._answered) >= ANSWERED_KEPT:
                self._answered.clear()
            self._answered.add(rcpt)

            def sent(about: About) -> None:
                log.info("mail.sent", mail=mail_id, kind=kind, to=rcpt, **about)

            return Outcome(mail, "sent", named=True, said=sent)
        finally:
            self._marks.pop(mail_id, None)

    async def _fail_erased(self, mail_id: int) -> None:
        """A mail erased whole fails without its kind's refusal handler (`finish_mail` would hand it
        over): the copy that sends to a fallback address would carry the marker too."""
        outbox = self.store.outbox

        def fail() -> None:
            with outbox.transaction():
                outbox.conn.execute(
                    "UPDATE outbox SET state = 'failed', last_error = ?, sent_at = ? WHERE id = ?",
                    (NOT_SENT, outbox.clock(), mail_id),
                )

        await self.store.write(fail)

    async def _count_cut_off(self) -> None:
        """The sends the stop gives up on after their final dot count as unanswered: each start
        sent such a mail again with its count unchanged, and a relay that never answers the dot
        got it once more at every restart."""
        cut = [i for i, mark in self._marks.items() if mark.whole]
        if not cut:
            return
        outbox = self.store.outbox
        try:
            await self.store.write(lambda: outbox.count_cut_off(cut))
        except Exception as exc:
            if not store_trouble(exc):
                raise
            log.error("outbox.cut_off_uncounted", mails=cut, error=repr(exc)[:200])
            return
        log.warning(
            "outbox.cut_off_unanswered",
            mails=cut,
            note="the relay had the whole mail and had not answered: each counts as a send taken"
            f" without an answer (after {UNANSWERED_SENDS} it is given up on as most likely arrived)",
        )

    async def close(self) -> None:
        """At the daemon's stop, once no send is left: the relay sessions kept open between mails
        end with QUIT (`SmtpRelayMailer.close`), not with the process's exit."""
        close = getattr(self.mailer, "close", None)
        if close is not None:
            await close()

    async def stop(self, timeout: float = STOP_WAIT_SECONDS) -> bool:
        """Claim no more mail and wait, at most `timeout` seconds, for the mail being sent to be
        answered and recorded; whether it was. A mail cut off stays `active`, and the next start
        sends it again as a possible duplicate: so is one whose relay takes longer to answer the
        final dot than the stop may wait (DOT_REPLY_TIMEOUT is well past systemd's TimeoutStopSec)."""
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("outbox.stop_timeout", mails=sorted(self._marks), waited=timeout)
            await self._count_cut_off()
            if unwritten := dict(self._outcomes.unwritten):
                # The relay answered them, but the store still refuses the record: as after a crash,
                # the next start sends them once more (those it took: possible duplicates).
                log.error(
                    "outbox.outcome_unwritten",
                    mails=unwritten,
                    note="the relay answered; the store refused the record until the stop: the next"
                    " start sends these again, each once",
                )
            return False
        return True
