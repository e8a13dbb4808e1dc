"""The outbox worker: mail leaves only from the outbox table, with the same claim/finish pattern as
SMS parts. A mail is claimed, handed to the relay (`gateway.mailer`), and marked sent only after
the relay's `250`; a temporary failure backs off, a permanent one (5xx) or too many attempts marks
it failed and logs it for the admin. A relay that took the whole mail but never answered it may
have delivered it: such a mail is sent again a few times at most, each time logged as a possible
duplicate (`UNANSWERED_SENDS`). An outcome the store refuses (a full disk) is kept and written
again until it is on disk (`gateway.outboxrecord`); which failures are the relay's own is
`gateway.relayfaults`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from gateway.bitelog import FaultLog
from gateway.mailer import LONGEST_SEND_SECONDS, MaildirError, Mailer
from gateway.mailtransaction import SEND_MARK, PermanentMailError, PossiblyDeliveredError, SendMark
from gateway.outboxrecord import OutcomeWriter
from gateway.privacy.erasure import ERASED_MAIL, NOT_SENT, erased_meanwhile
from gateway.relayfaults import relay_fault, wake_relay_faults
from gateway.store.commit import store_trouble
from gateway.store.db import Store
from gateway.store.outbox import ClaimedMail
from gateway.supervisor import beat
from smsc.pacing import backoff

log = structlog.get_logger(__name__)


def mail_retry_delay(attempts: int) -> float:
    return backoff(attempts, 30.0, 3600.0)


# How long a stop waits for the sends in progress to be answered and recorded: a send cut off is
# sent again by the next start (the relay may then deliver it twice). Within systemd's
# TimeoutStopSec (systemd/smsgw.service) after the links' own wait.
STOP_WAIT_SECONDS = 30.0


IDLE_LOOK = 5.0  # seconds between looks for mail due while nothing wakes the worker
OTHER_PROCESS_LOOK = 0.5  # seconds between looks for another process's commit while idle


# Sends of one mail the relay took whole without answering (PossiblyDeliveredError): after this
# many, it is not sent again (see OutboxWorker._unanswered_send).
UNANSWERED_SENDS = 3
# The worker is silent while every slot waits for a send; a send's own bound, and the store's
# writes around it, are no hang (the supervisor withholds systemd's watchdog past this).
STALL_AFTER_SECONDS = LONGEST_SEND_SECONDS + 60.0


class _MailLog:
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
    any other OSError keeps its file name.
    """
    if isinstance(exc, MaildirError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc!r}: {exc.filename}"
    return repr(exc)


class OutboxWorker:
    stall_after = STALL_AFTER_SECONDS

    def __init__(
        self, store: Store, mailer: Mailer, *, max_attempts: int = 125, concurrency: int = 4
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
        # A relay fault deferred mail since the last success (or before this start, unknown): the
        # next success makes it due again (`wake_relay_faults`).
        self._relay_faulted = True
        # A relay down defers every mail at each try: one line per kind of error a second, with
        # `suppressed=N`, not one per mail (42 mails made 83 lines in 70 s). On the store's clock, as
        # the back-off: a mail's tries a back-off apart are never one flood.
        self._deferred_log = FaultLog(_MailLog(), clock=store.clock)
        self._outcomes = OutcomeWriter(store)  # the relay's answers not yet on disk

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Up to `concurrency` sends at a time; a send that ends frees its slot for the next mail due.

        A batch claimed was sent whole before the next claim: one mail whose relay answered slowly
        (a content filter; the final dot's answer is waited for up to DOT_REPLY_TIMEOUT) held back
        every answer and bounce queued meanwhile. Every send claimed ends and is recorded before a
        failure is raised or a stop lets go: a send left running would be sent again by the
        restart's recovery.
        """
        sending: dict[asyncio.Task[None], int] = {}
        failure: BaseException | None = None
        looking: asyncio.Task[None] | None = None
        try:
            while sending or (failure is None and not self._stopping):
                beat()
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
                        log.warning("outbox.send_failed_too", task=task.get_name(), error=repr(exc))
                    failure = failure or exc
                if looking is not None:
                    looking.cancel()
                    looking = None
            if failure is not None:
                raise failure
        finally:
            if looking is not None:
                looking.cancel()
            for task in sending:
                task.cancel()  # the worker itself was cancelled: a stop gave up, or the daemon ends
            await asyncio.gather(*sending, return_exceptions=True)
            self._track({})

    async def _claim(self, free: int) -> dict[asyncio.Task[None], int]:
        # Busy from the claim on: mail claimed is sent and recorded before a stop lets go.
        self._idle.clear()
        self._wake.clear()  # what was queued before the claim is in it
        batch = await self.store.write(lambda: self.store.outbox.claim_mail(free))
        # Mail due may wait for a send to its recipient (`gateway.store.outboxclaim`): the next
        # claim is at a send's end, at new mail, or when mail comes due, not at once and again.
        self._short = len(batch) < free
        return {
            asyncio.create_task(self._send_one(mail), name=f"outbox-{mail.id}"): mail.id for mail in batch
        }

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
        process committed (`PRAGMA data_version`, read on the loop's connection twice a second):
        mail a command queued (`premium add`'s confirmation, `billing run --send`) waited for the
        next look, up to 5 s."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        seen = self._data_version()
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

    async def _send_one(self, mail: ClaimedMail) -> None:
        mail_id, kind, mail_from, rcpt, content, attempts = mail[:6]
        unanswered = mail.unanswered
        if content == ERASED_MAIL:  # the marker alone, no header: never the recipient's mail
            await self._fail_erased(mail_id)
            log.warning("mail.not_sent", mail=mail_id, kind=kind, to=rcpt, reason=NOT_SENT)
            return
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
        about: dict[str, int] = {}  # the message, MO or email the mail is about, for its line
        SEND_MARK.set(mark := SendMark())
        self._marks[mail_id] = mark
        try:
            await self.mailer.send(mail_from, rcpt, content)
        except PermanentMailError as exc:
            if await self._finish(mail_id, "failed", str(exc), about=about):
                log.error("mail.failed", mail=mail_id, kind=kind, to=rcpt, error=str(exc), **about)
        except PossiblyDeliveredError as exc:
            await self._unanswered_send(mail, unanswered + 1, str(exc))
        except Exception as exc:
            error = error_text(exc)
            if attempts >= self.max_attempts:
                if await self._finish(mail_id, "failed", error, about=about):
                    log.error("mail.failed", mail=mail_id, kind=kind, to=rcpt, error=error, attempts=attempts,
                              **about)  # fmt: skip
            else:
                delay = mail_retry_delay(attempts)
                fault = relay_fault(exc)
                if fault is not None:
                    self._relay_faulted = True
                if not await self._finish(mail_id, "queued", error, retry_in=delay):
                    return
                self._deferred_log.warning(
                    "mail.deferred", exc, mail=mail_id, mail_kind=kind, to=rcpt, error=error,
                    retry_in=delay, relay_fault=fault,
                )  # fmt: skip
        else:
            await self._finish(mail_id, "sent", about=about)
            log.info("mail.sent", mail=mail_id, kind=kind, to=rcpt, **about)
            if self._relay_faulted:
                await self._relay_back()
        finally:
            self._marks.pop(mail_id, None)

    async def _relay_back(self) -> None:
        """The relay took a mail: what waited out a back-off for its faults goes now (the review
        found mail waiting up to an hour after a 30-min outage, though the relay was back)."""
        self._relay_faulted = False  # before the write: a fault meanwhile is seen by the next success
        outbox = self.store.outbox
        try:
            due = await self.store.write(lambda: wake_relay_faults(outbox))
        except Exception as exc:
            if not store_trouble(exc) or self.store.db.replaced is not None:
                raise
            self._relay_faulted = True  # the next success tries again; this send is recorded already
            self._deferred_log.warning("outbox.relay_back_unwritten", exc, error=repr(exc)[:200])
            return
        if due:
            log.info("outbox.relay_back", due_again=due, note="mail deferred for the relay's faults goes now")
            self.wake()

    async def _unanswered_send(self, mail: ClaimedMail, count: int, why: str) -> None:
        """A mail the relay took whole without answering goes again on the usual back-off, until
        UNANSWERED_SENDS of its sends went unanswered; then it fails, as most likely delivered.

        A relay that has it delivers it once more for each send, but one that lost it (crashed
        before it stored the mail) never delivers it: a bounce or a phone's answer lost is worse
        than one arriving twice, so it goes again, each time logged `outbox.possible_duplicate`.
        Unbounded, a relay that always drops the connection after the dot (a firewall closing an
        idle connection while a slow filter works) had the user get the mail again and again for
        the five days of `max_attempts`. The count is kept with the mail (`outbox.unanswered`), across
        restarts. Given up on, it has most likely arrived: no copy goes to a fallback address.
        """
        mail_id, kind, rcpt, attempts = mail.id, mail.kind, mail.rcpt, mail.attempts
        if count >= UNANSWERED_SENDS or attempts >= self.max_attempts:
            error = (
                f"{why}; given up after {attempts} tries, {count} of them unanswered (it has most"
                f" likely arrived; `smsgw outbox retry {mail_id}` sends it once more)"
            )
            if await self._finish(mail_id, "failed", error, unanswered=True):
                log.error("mail.failed", mail=mail_id, kind=kind, to=rcpt, error=error, attempts=attempts)
            return
        delay = mail_retry_delay(attempts)
        error = f"{why}; sent again in {delay:g} s as a possible duplicate ({count} of {UNANSWERED_SENDS})"
        if await self._finish(mail_id, "queued", error, retry_in=delay, unanswered=True):
            log.warning("mail.deferred", mail=mail_id, kind=kind, to=rcpt, error=error, retry_in=delay)

    async def _finish(
        self,
        mail_id: int,
        state: str,
        error: str | None = None,
        retry_in: float | None = None,
        *,
        unanswered: bool = False,
        about: dict[str, int] | None = None,
    ) -> bool:
        """Record a send's outcome durably: a mail marked sent is never sent again after a crash.
        Whether it was recorded: a failure is not, over the erasure of the mail meanwhile. `about`
        takes what the mail is about, so that a bounce's line names its message (`mail.sent`). A
        store in trouble (a full disk) is written to again until it takes it (`OutcomeWriter`): the
        relay's answer is known, and the mail must not go again for want of its record."""
        outbox = self.store.outbox

        def finish() -> bool:
            if state != "sent" and erased_meanwhile(outbox.conn, mail_id):
                log.warning("mail.not_sent", mail=mail_id, error=error, reason=NOT_SENT)
                return False
            if about is not None:  # a mail's end only, not each SMS's: one read by the row's key
                sql = "SELECT message_ref, mo_ref, email_ref FROM outbox WHERE id = ?"
                refs = outbox.conn.execute(sql, (mail_id,)).fetchone() or (None, None, None)
                about.update((k, v) for k, v in zip(("message", "mo", "email"), refs, strict=True) if v)
            outbox.finish_mail(mail_id, state, error, retry_in, unanswered=unanswered)
            return True

        return await self._outcomes.write(mail_id, state, finish)

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
        cut = [i for i in self._in_flight if (mark := self._marks.get(i)) is not None and mark.whole]
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
            log.warning("outbox.stop_timeout", mails=list(self._in_flight), waited=timeout)
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
