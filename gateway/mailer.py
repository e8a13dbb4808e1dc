"""Outbound mail: the `Mailer` seam, its SMTP relay implementation and the outbox worker.

Mail leaves only from the outbox table, with the same claim/finish pattern as SMS parts: a mail
is claimed, handed to the relay, and marked sent only after the relay's `250`. A temporary failure
backs off; a permanent one (5xx) or too many attempts marks it failed and logs it for the admin.
A relay that took the whole mail but never answered it may have delivered it: such a mail is sent
again a few times at most, each time logged as a possible duplicate (`UNANSWERED_SENDS`).
With `[mail] relay = "maildir:DIR"` mail is written as `.eml` files instead (`CaptureMailer`), so
that a fresh install shows its replies and bounces without any mail server.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import ssl
import time
from pathlib import Path
from typing import Protocol

import aiosmtplib
import structlog

from gateway.config import Config
from gateway.configbase import ConfigError
from gateway.configservices import MailSection
from gateway.filemodes import private_dir, write_private_bytes
from gateway.store.db import Store
from gateway.store.outbox import ClaimedMail
from gateway.supervisor import beat
from smsc.pacing import backoff

log = structlog.get_logger(__name__)


class PermanentMailError(Exception):
    """The relay refused the mail for good (5xx)."""


class PossiblyDeliveredError(Exception):
    """The relay was sent the whole mail, final dot included, and gave no answer to it.

    Not a failed connection: a relay that stores the mail before it answers (a content filter
    slower than the wait, a crash or a dropped connection after the dot) has it, and sending it
    again delivers it twice. The worker sends it again a few times at most (`UNANSWERED_SENDS`).
    """


class RelayCertificateError(Exception):
    """The relay's certificate failed verification at STARTTLS.

    A matter of the gateway's setup, not of the mail: it is retried like any connection failure,
    but its text names the settings that fix it, as OpenSSL's own words ("self-signed
    certificate") leave an admin guessing for the five days the outbox keeps trying.
    """


class Mailer(Protocol):
    async def send(self, mail_from: str, rcpt: str, content: bytes) -> None: ...


_SESSION_ERRORS = (
    aiosmtplib.SMTPAuthenticationError,
    aiosmtplib.SMTPHeloError,
    aiosmtplib.SMTPConnectResponseError,
    # MAIL FROM names the gateway's own sender (or <>): refusing it is about our setup, not the mail.
    aiosmtplib.SMTPSenderRefused,
)

# 5xx texts that blame the gateway's relay setup, not the mail or its recipient: a login is needed
# (530), or the relay does not relay for us. Postfix, Exim and Exchange word them like this.
_SETUP_REFUSAL = re.compile(
    r"authentication (is )?required|must (first )?authenticate|relay(ing)? (access )?(is )?"
    r"(denied|not permitted|prohibited|not allowed)|not permitted to relay|unable to relay",
    re.IGNORECASE,
)


def _setup_refusal(code: int, message: str) -> bool:
    return code == 530 or _SETUP_REFUSAL.search(message) is not None


# Each step of a relay session (the connection and its greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT,
# DATA, QUIT) waits this long for the relay's answer.
COMMAND_TIMEOUT = 30.0
# The answer to the final dot alone: RFC 5321 4.5.3.2.6 asks for at least 10 minutes, as a relay's
# content filter may take minutes and a client that gives up sooner sends the mail again although
# the relay took it (30 s sent a company's bounces five times in ten minutes).
DOT_REPLY_TIMEOUT = 600.0
# The longest one send may take without a hang: the dot's wait and fifteen steps of COMMAND_TIMEOUT
# (a STARTTLS session with AUTH LOGIN has some twelve).
LONGEST_SEND_SECONDS = DOT_REPLY_TIMEOUT + 15 * COMMAND_TIMEOUT


class SmtpRelayMailer:
    def __init__(
        self, cfg: MailSection, hostname: str, password: str | None = None, ca_file: Path | None = None
    ) -> None:
        self.cfg = cfg
        self.hostname = hostname
        # Read once by build_mailer at start, so a missing relay_password_file stops the start.
        self.password = password
        # Resolved beside the config and checked by build_mailer; read again at each connection, so
        # a renewed CA bundle is taken without a restart.
        self.ca_file = ca_file

    async def send(self, mail_from: str, rcpt: str, content: bytes) -> None:
        host, port = self.cfg.relay_addr
        client = aiosmtplib.SMTP(
            hostname=host,
            port=port,
            local_hostname=self.hostname,
            start_tls=self.cfg.relay_starttls,
            use_tls=False,
            validate_certs=self.cfg.relay_tls_verify,
            cert_bundle=str(self.ca_file) if self.ca_file is not None else None,
            timeout=COMMAND_TIMEOUT,
        )
        try:
            async with client:
                if self.cfg.relay_username and self.password:
                    await client.login(self.cfg.relay_username, self.password)
                await _transaction(client, mail_from, rcpt, content)
        except ssl.SSLCertVerificationError as exc:
            raise RelayCertificateError(_untrusted(host, exc, self.ca_file)) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # The one recipient refused: for good only with a 5xx (a 450 greylisting or 452 is "later").
            refusals = exc.recipients
            if refusals and all(
                500 <= r.code < 600 and not _setup_refusal(r.code, r.message) for r in refusals
            ):
                raise PermanentMailError(str(exc)) from exc
            raise
        except _SESSION_ERRORS:
            # A 5xx about the session (our relay login, its greeting, our sender), not about this
            # mail: retried, or one mistake in the relay's setup would fail the whole outbox at once.
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600 and not _setup_refusal(exc.code, exc.message):
                raise PermanentMailError(f"{exc.code} {exc.message}") from exc
            raise


_LINE_END = re.compile(rb"\r\n|\r|\n")
_DOT_LINE = re.compile(rb"^\.", re.MULTILINE)


async def _transaction(client: aiosmtplib.SMTP, mail_from: str, rcpt: str, content: bytes) -> None:
    """MAIL, RCPT and DATA as aiosmtplib's `sendmail` sends them, but for the answer to the final dot.

    `sendmail` (and `data`) waits as long for that answer as for `354`: COMMAND_TIMEOUT for both
    sent a mail again that a slow relay had taken, DOT_REPLY_TIMEOUT for both would let a relay
    stuck at `DATA` hold a send for ten minutes. MAIL with `<>` for a bounce's empty sender, and
    one recipient refused raises `SMTPRecipientsRefused`, as `sendmail` did.
    """
    body = _LINE_END.sub(b"\r\n", content)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    await client.mail(mail_from, options=await _mail_options(client, content, len(body)))
    try:
        await client.rcpt(rcpt)
    except aiosmtplib.SMTPRecipientRefused as exc:
        raise aiosmtplib.SMTPRecipientsRefused([exc]) from exc
    started = await client.execute_command(b"DATA")
    if started.code != 354:
        raise aiosmtplib.SMTPDataError(started.code, started.message)
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    protocol.write(_DOT_LINE.sub(b"..", body) + b".\r\n")
    try:
        # Read before the loop runs again: no part of the answer can arrive unread in between.
        answer = await protocol.read_response(timeout=DOT_REPLY_TIMEOUT)
    except aiosmtplib.SMTPTimeoutError as exc:
        client.close()  # a late answer must not be read as the answer to QUIT
        raise PossiblyDeliveredError(
            f"the relay took the whole mail but did not answer within {_span(DOT_REPLY_TIMEOUT)};"
            " it may have delivered it"
        ) from exc
    except aiosmtplib.SMTPServerDisconnected as exc:
        client.close()
        raise PossiblyDeliveredError(
            "the relay took the whole mail but closed the connection without answering;"
            " it may have delivered it"
        ) from exc
    if answer.code != 250:
        raise aiosmtplib.SMTPDataError(answer.code, answer.message)


async def _mail_options(client: aiosmtplib.SMTP, content: bytes, size: int) -> list[str]:
    """`SIZE` where the relay offers it (RFC 1870, as `sendmail` sent it), and `BODY=8BITMIME` for
    a mail with 8-bit bytes when the relay offers it (RFC 6152).

    Forwarded bounces carry their original's 8-bit text as it came; a relay told nothing may take
    such a body as 7-bit and mangle it, or refuse it. A relay without 8BITMIME gets the mail as
    before: the gateway has no 7-bit form of a forwarded original to offer instead.
    """
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            await client.helo()  # a relay without ESMTP: no extensions, so no parameters either
    options = [f"SIZE={size}"] if client.supports_extension("size") else []
    if not content.isascii() and client.supports_extension("8BITMIME"):
        options.append("BODY=8BITMIME")
    return options


def _span(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} s"


# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH: the certificate is
# trusted but names another host (a relay written as 127.0.0.1, a certificate for its name).
_NAME_MISMATCH = frozenset({62, 64})
# X509_V_ERR_CERT_NOT_YET_VALID and X509_V_ERR_CERT_HAS_EXPIRED: trusted, but out of its dates.
_OUT_OF_DATE = frozenset({9, 10})


def _untrusted(host: str, exc: ssl.SSLCertVerificationError, ca_file: Path | None) -> str:
    """The certificate failure in words that say what to change in the config."""
    why = (exc.verify_message or str(exc)).rstrip(".")
    if exc.verify_code in _NAME_MISMATCH:
        problem = f"the relay's certificate does not name {host!r}, the host in [mail] relay ({why})"
        fix = (
            "set [mail] relay to the name the certificate is issued for, or relay_tls_verify = false"
            " for a relay on loopback or a trusted LAN"
        )
    elif exc.verify_code in _OUT_OF_DATE:
        # Told to set the CA file it had set, an admin would only be left with turning checks off.
        problem = f"the relay's certificate is out of date ({why})"
        fix = "renew the certificate on the relay, or check this machine's clock (`timedatectl`)"
    else:
        against = f"the CA file {ca_file}" if ca_file is not None else "the system's CA certificates"
        problem = f"the relay's certificate is not trusted: {why}, checked against {against}"
        fix = (
            "set [mail] relay_tls_ca_file to the CA certificate that issued it (PEM), or"
            " relay_tls_verify = false for a relay on loopback or a trusted LAN"
        )
    return f"{problem}; {fix}"


class CaptureMailer:
    """Writes each mail to `DIR/<time>-<n>-<rcpt>.eml`, readable by any mail client.

    The file is written under a temporary name, fsynced and renamed, so a half-written file never
    looks like a mail (as a Maildir delivery does). The envelope is kept in `Return-Path` and
    `Delivered-To` lines at the top, as a local delivery agent adds them. Bounces and answers quote
    SMS texts, so the files are 0600 and the directory 0700 whatever the umask, as a mailbox is.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seq = itertools.count(1)

    async def send(self, mail_from: str, rcpt: str, content: bytes) -> None:
        await asyncio.to_thread(self._write, mail_from, rcpt, content)

    def _write(self, mail_from: str, rcpt: str, content: bytes) -> None:
        private_dir(self.directory)
        safe_rcpt = re.sub(r"[^A-Za-z0-9@._+-]", "_", rcpt)[:80] or "unknown"
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(self._seq):04d}-{safe_rcpt}.eml"
        envelope = f"Return-Path: <{mail_from}>\nDelivered-To: {rcpt}\n".encode("ascii", "replace")
        tmp = self.directory / f".{name}.tmp"
        write_private_bytes(tmp, envelope + content)
        tmp.replace(self.directory / name)


def build_mailer(cfg: Config) -> Mailer:
    """The relay from `[mail] relay`: SMTP, or a local capture directory (`maildir:DIR`)."""
    capture = cfg.mail.capture_dir
    if capture is not None:
        return CaptureMailer(cfg.path(capture))
    return SmtpRelayMailer(cfg.mail, cfg.gateway.hostname, cfg.mail.relay_secret(cfg.base_dir), _ca_file(cfg))


def _ca_file(cfg: Config) -> Path | None:
    """`[mail] relay_tls_ca_file` beside the config, loaded once at start: an unreadable or non-PEM
    file stops the start with its name, not every mail for five days with an OpenSSL message."""
    if cfg.mail.relay_tls_ca_file is None:
        return None
    path = cfg.path(cfg.mail.relay_tls_ca_file)
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        raise ConfigError(f"mail: relay_tls_ca_file {path} holds no PEM certificate ({exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(f"mail: cannot read relay_tls_ca_file {path}: {exc.strerror}") from exc
    return path


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
        self._unanswered: dict[int, int] = {}  # mail id → its sends the relay took without answering

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
                    failure = failure or task.exception()
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
        due = self.store.outbox.next_mail_due_at()
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
        unanswered = self._unanswered.get(mail_id, 0)
        if mail.maybe_sent or unanswered:
            log.warning(
                "outbox.possible_duplicate",
                mail=mail_id,
                kind=kind,
                to=rcpt,
                note=f"sent again: the relay took it {unanswered} time(s) without answering"
                if unanswered
                else "sent again: an earlier send was cut off (stop or crash) and may have reached the relay",
            )
        try:
            await self.mailer.send(mail_from, rcpt, content)
        except PermanentMailError as exc:
            self._unanswered.pop(mail_id, None)
            await self._finish(mail_id, "failed", str(exc))
            log.error("mail.failed", mail=mail_id, kind=kind, to=rcpt, error=str(exc))
        except PossiblyDeliveredError as exc:
            await self._unanswered_send(mail, unanswered + 1, str(exc))
        except Exception as exc:
            if attempts >= self.max_attempts:
                self._unanswered.pop(mail_id, None)
                await self._finish(mail_id, "failed", repr(exc))
                log.error("mail.failed", mail=mail_id, kind=kind, to=rcpt, error=repr(exc), attempts=attempts)
            else:
                delay = mail_retry_delay(attempts)
                await self._finish(mail_id, "queued", repr(exc), retry_in=delay)
                log.warning(
                    "mail.deferred", mail=mail_id, kind=kind, to=rcpt, error=repr(exc), retry_in=delay
                )
        else:
            self._unanswered.pop(mail_id, None)
            await self._finish(mail_id, "sent")
            log.info("mail.sent", mail=mail_id, kind=kind, to=rcpt)

    async def _unanswered_send(self, mail: ClaimedMail, count: int, why: str) -> None:
        """A mail the relay took whole without answering goes again on the usual back-off, until
        UNANSWERED_SENDS of its sends went unanswered; then it fails, as most likely delivered.

        A relay that has it delivers it once more for each send, but one that lost it (crashed
        before it stored the mail) never delivers it: a bounce or a phone's answer lost is worse
        than one arriving twice, so it goes again, each time logged `outbox.possible_duplicate`.
        Unbounded, a relay that always drops the connection after the dot (a firewall closing an
        idle connection while a slow filter works) had the user get the mail again and again for
        the five days of `max_attempts`. The count is kept in this process only: after a restart
        such a mail may go up to UNANSWERED_SENDS times more.
        """
        mail_id, kind, rcpt, attempts = mail.id, mail.kind, mail.rcpt, mail.attempts
        if count >= UNANSWERED_SENDS or attempts >= self.max_attempts:
            self._unanswered.pop(mail_id, None)
            error = (
                f"{why}; given up after {attempts} tries, {count} of them unanswered (it has most"
                f" likely arrived; `smsgw outbox retry {mail_id}` sends it once more)"
            )
            await self._finish(mail_id, "failed", error)
            log.error("mail.failed", mail=mail_id, kind=kind, to=rcpt, error=error, attempts=attempts)
            return
        self._unanswered[mail_id] = count
        delay = mail_retry_delay(attempts)
        error = f"{why}; sent again in {delay:g} s as a possible duplicate ({count} of {UNANSWERED_SENDS})"
        await self._finish(mail_id, "queued", error, retry_in=delay)
        log.warning("mail.deferred", mail=mail_id, kind=kind, to=rcpt, error=error, retry_in=delay)

    async def _finish(
        self, mail_id: int, state: str, error: str | None = None, retry_in: float | None = None
    ) -> None:
        """Record a send's outcome durably: a mail marked sent is never sent again after a crash."""
        outbox = self.store.outbox
        await self.store.write(lambda: outbox.finish_mail(mail_id, state, error, retry_in))

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
            return False
        return True
