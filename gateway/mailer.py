"""Outbound mail: the `Mailer` seam, its SMTP relay implementation and the outbox worker.

Mail leaves only from the outbox table, with the same claim/finish pattern as SMS parts: a mail
is claimed, handed to the relay, and marked sent only after the relay's `250`. A temporary failure
backs off; a permanent one (5xx) or too many attempts marks it failed and logs it for the admin.
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
            timeout=30,
        )
        try:
            async with client:
                if self.cfg.relay_username and self.password:
                    await client.login(self.cfg.relay_username, self.password)
                # sendmail (not send_message) so that bounces can carry the empty sender <>.
                options = await _body_options(client, content)
                await client.sendmail(mail_from, [rcpt], content, mail_options=options)
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


async def _body_options(client: aiosmtplib.SMTP, content: bytes) -> list[str]:
    """`BODY=8BITMIME` for a mail with 8-bit bytes when the relay offers it (RFC 6152).

    Forwarded bounces carry their original's 8-bit text as it came; a relay told nothing may take
    such a body as 7-bit and mangle it, or refuse it. A relay without 8BITMIME gets the mail as
    before: the gateway has no 7-bit form of a forwarded original to offer instead.
    """
    if content.isascii():
        return []
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            await client.helo()  # a relay without ESMTP: no extensions, so no BODY parameter either
    return ["BODY=8BITMIME"] if client.supports_extension("8BITMIME") else []


# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH: the certificate is
# trusted but names another host (a relay written as 127.0.0.1, a certificate for its name).
_NAME_MISMATCH = frozenset({62, 64})


def _untrusted(host: str, exc: ssl.SSLCertVerificationError, ca_file: Path | None) -> str:
    """The certificate failure in words that say what to change in the config."""
    why = (exc.verify_message or str(exc)).rstrip(".")
    if exc.verify_code in _NAME_MISMATCH:
        problem = f"the relay's certificate does not name {host!r}, the host in [mail] relay ({why})"
        fix = (
            "set [mail] relay to the name the certificate is issued for, or relay_tls_verify = false"
            " for a relay on loopback or a trusted LAN"
        )
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


class OutboxWorker:
    def __init__(
        self, store: Store, mailer: Mailer, *, max_attempts: int = 125, concurrency: int = 4
    ) -> None:
        self.store = store
        self.mailer = mailer
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._stopping = False
        self._idle = asyncio.Event()  # clear while a batch is claimed and not yet all recorded
        self._idle.set()
        self._in_flight: list[int] = []  # the batch's mail ids, named if a stop has to give up on them

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            beat()
            # Busy from the claim on: mail claimed is sent and recorded before a stop lets go.
            self._idle.clear()
            try:
                batch = await self.store.write(lambda: self.store.outbox.claim_mail(self.concurrency))
                self._in_flight = [mail.id for mail in batch]
                # Every send of the batch ends (and is recorded) before a failure of one is raised:
                # a send left running would be sent again by the restart's recovery.
                results = await asyncio.gather(
                    *(self._send_one(mail) for mail in batch), return_exceptions=True
                )
            finally:
                self._in_flight = []
                self._idle.set()
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            if batch:
                continue
            due = self.store.outbox.next_mail_due_at()
            timeout = IDLE_LOOK if due is None else min(max(due - self.store.clock(), 0.05), IDLE_LOOK)
            await self._idle_wait(timeout)
            self._wake.clear()

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
        if mail.maybe_sent:
            log.warning(
                "outbox.possible_duplicate",
                mail=mail_id,
                kind=kind,
                to=rcpt,
                note="sent again: an earlier send was cut off (stop or crash) and may have reached the relay",
            )
        try:
            await self.mailer.send(mail_from, rcpt, content)
        except PermanentMailError as exc:
            await self._finish(mail_id, "failed", str(exc))
            log.error("mail.failed", mail=mail_id, kind=kind, to=rcpt, error=str(exc))
        except Exception as exc:
            if attempts >= self.max_attempts:
                await self._finish(mail_id, "failed", repr(exc))
                log.error("mail.failed", mail=mail_id, kind=kind, to=rcpt, error=repr(exc), attempts=attempts)
            else:
                delay = mail_retry_delay(attempts)
                await self._finish(mail_id, "queued", repr(exc), retry_in=delay)
                log.warning(
                    "mail.deferred", mail=mail_id, kind=kind, to=rcpt, error=repr(exc), retry_in=delay
                )
        else:
            await self._finish(mail_id, "sent")
            log.info("mail.sent", mail=mail_id, kind=kind, to=rcpt)

    async def _finish(
        self, mail_id: int, state: str, error: str | None = None, retry_in: float | None = None
    ) -> None:
        """Record a send's outcome durably: a mail marked sent is never sent again after a crash."""
        outbox = self.store.outbox
        await self.store.write(lambda: outbox.finish_mail(mail_id, state, error, retry_in))

    async def stop(self, timeout: float = STOP_WAIT_SECONDS) -> bool:
        """Claim no more mail and wait, at most `timeout` seconds, for the batch being sent to be
        answered and recorded; whether it was. A mail cut off stays `active`, and the next start
        sends it again as a possible duplicate."""
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("outbox.stop_timeout", mails=list(self._in_flight), waited=timeout)
            return False
        return True
