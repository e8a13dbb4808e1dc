"""Outbound mail: the `Mailer` seam and its implementations, the SMTP relay and a capture directory.

The outbox worker (`gateway.outboxworker`) hands each mail to a `Mailer` and records the outcome;
here is what a send means: a 5xx refusal of the mail is `PermanentMailError`, a relay that took
the whole mail without answering is `PossiblyDeliveredError`, anything else is tried again later.
A mail whose envelope or headers are not ASCII goes with SMTPUTF8 (RFC 6531), and fails at once
at a relay that does not offer it; a domain alone that is not ASCII is written in IDNA A-labels
instead, and the mail needs no SMTPUTF8.
A session whose mail ended is kept open for the next mail (`gateway.mailsessions`).
With `[mail] relay = "maildir:DIR"` mail is written as `.eml` files instead (`CaptureMailer`), so
that a fresh install shows its replies and bounces without any mail server. What a session does
with the relay's TLS is `gateway.mailtls`', one mail's transaction on a session
`gateway.mailtransaction`'s, and when the relay's password may go on a session in clear
`gateway.relaylogin`'s.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, Protocol

import aiosmtplib
import structlog

from gateway.capturemail import OUTBOX_MAIL as OUTBOX_MAIL
from gateway.capturemail import CaptureMailer as CaptureMailer
from gateway.capturemail import MaildirError as MaildirError
from gateway.config import Config
from gateway.configservices import WHEN_OFFERED, MailSection
from gateway.mailauth import RelayLogins, greet, log_in
from gateway.mailsessions import IDLE_SECONDS, MAILS_PER_SESSION, IdleSessions, RelaySession, quit_session
from gateway.mailtls import (
    HandshakeFailed,
    RelayCertificateError,
    implicit_tls_hint,
    no_starttls,
    relay_ca_file,
    required_tls,
    starttls_if_offered,
    untrusted,
)
from gateway.mailtransaction import (
    COMMAND_TIMEOUT,
    DOT_REPLY_TIMEOUT,
    UPLOAD_TIMEOUT,
    PermanentMailError,
    SessionGone,
    setup_refusal,
    transaction,
)
from gateway.relayfaultkinds import NULL_SENDER_REFUSED
from gateway.relaylogin import HANDSHAKE_FAILED, NOT_OFFERED, ClearLoginGuard
from gateway.relayloginkept import KEPT_FILE, KeptLogins

log = structlog.get_logger(__name__)


class Mailer(Protocol):
    async def send(self, mail_from: str, rcpt: str, content: bytes) -> None: ...


_SESSION_ERRORS = (
    aiosmtplib.SMTPAuthenticationError,
    aiosmtplib.SMTPHeloError,
    aiosmtplib.SMTPConnectResponseError,
)
# A 5xx to MAIL FROM:<> is the bounce's refusal, as one to RCPT is: retried as the session's, every
# bounce to a relay that will not take the null sender was tried for five days, then lost without a
# copy. A bounce's envelope sender must be null (RFC 5321 4.5.5, RFC 3464): the fix is the relay's
# (`NULL_SENDER_REFUSED` says it, in the log and in the failed mail's error). A 5xx to the gateway's
# own address is the relay's setup (a sender "not owned by" our login): retried as the session's,
# as a setup mistake fails nothing, and `status` names it (`relayfaultkinds`).

# The longest one send may take without a hang: the upload, the dot's wait and fifteen steps of
# COMMAND_TIMEOUT (a STARTTLS session with AUTH LOGIN has some twelve; a kept session that fails its
# RSET one more before them).
LONGEST_SEND_SECONDS = UPLOAD_TIMEOUT + DOT_REPLY_TIMEOUT + 15 * COMMAND_TIMEOUT


class SmtpRelayMailer:
    """Sends each mail on a session kept open from the mail before (`gateway.mailsessions`), else
    on a new connection; `close` ends the idle sessions with QUIT at the daemon's stop."""

    def __init__(
        self,
        cfg: MailSection,
        hostname: str,
        password: str | None = None,
        ca_file: Path | None = None,
        *,
        idle_seconds: float = IDLE_SECONDS,
        mails_per_session: int = MAILS_PER_SESSION,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.hostname = hostname
        # Read once by build_mailer at start, so a missing relay_password_file stops the start.
        self.password = password
        # Resolved beside the config and checked by build_mailer; read again at each connection, so
        # a renewed CA bundle is taken without a restart.
        self.ca_file = ca_file
        self._tls_failing: str | None = None  # the last failed opportunistic handshake, said once
        self.clear_login = ClearLoginGuard(cfg, password)
        self.sessions = IdleSessions(idle_seconds, mails_per_session)
        self._null_refused = False  # said once, until a mail with the null sender goes again
        # The AUTH mechanism last taken, tried first by the next login; the relay's refusal, which no
        # send logs in while it holds; whose turn it is (`gateway.mailauth`).
        self.logins = RelayLogins(clock, COMMAND_TIMEOUT)

    async def close(self) -> None:
        if closed := await self.sessions.close():
            log.info("mail.relay_sessions_closed", sessions=closed)

    async def send(self, mail_from: str, rcpt: str, content: bytes) -> None:
        session = self.sessions.take()
        if session is not None:
            try:
                await self._deliver(session, mail_from, rcpt, content, reused=True)
                return
            except SessionGone as exc:
                # Closed by the relay while idle (its timeout, a restart), or its limit for one
                # connection reached (a 4xx to MAIL): nothing of this mail reached it, so it goes at
                # once on a new connection, as one send.
                await _end(session.client, exc.__cause__ or exc)
                log.debug("mail.relay_session_gone", after_mails=session.mails, error=repr(exc.__cause__))
        host, port = self.cfg.relay_addr
        if self.cfg.relay_starttls != WHEN_OFFERED or self.cfg.relay_implicit_tls:
            await self._session(host, port, mail_from, rcpt, content, offered=False)
            return
        try:
            await self._session(host, port, mail_from, rcpt, content, offered=True)
        except HandshakeFailed as exc:
            said = f"{type(exc.__cause__).__name__}: {exc.__cause__}"
            if not self.clear_login.allowed:
                raise self.clear_login.refuse(HANDSHAKE_FAILED, said) from exc
            # Postfix `may`: the mail goes in clear rather than not at all, and the admin hears why.
            if said != self._tls_failing:
                self._tls_failing = said
                log.warning(
                    "mail.relay_tls_failed",
                    relay=f"{host}:{port}",
                    error=said,
                    sending="in plain text",
                    note="the relay offers STARTTLS but the handshake failed; fix the relay's TLS, or set"
                    " [mail] relay_starttls = false to stop trying",
                )
            await self._session(host, port, mail_from, rcpt, content, offered=False)
            return
        self._tls_failing = None

    async def probe(self) -> None:
        """A session opened as a send opens it (connect, EHLO, STARTTLS and AUTH as configured) and
        ended with QUIT, raising as a send would: whether the relay would take a mail now, for mail
        deferred for its faults (`gateway.relayprobe`). No MAIL: nothing is sent, nothing counted."""
        host, port = self.cfg.relay_addr
        offered = self.cfg.relay_starttls == WHEN_OFFERED and not self.cfg.relay_implicit_tls
        try:
            client = await self._open(host, port, offered=offered, probe=True)
        except HandshakeFailed:
            if not self.clear_login.allowed:
                raise
            client = await self._open(host, port, offered=False, probe=True)  # a send goes in clear then
        try:
            if client.last_ehlo_response is None:  # not said yet: no STARTTLS, no login
                await greet(client)
        except BaseException as exc:
            await _end(client, exc)
            raise
        await quit_session(client, COMMAND_TIMEOUT)

    async def _session(
        self, host: str, port: int, mail_from: str, rcpt: str, content: bytes, *, offered: bool
    ) -> None:
        """A new relay session, and the mail on it."""
        client = await self._open(host, port, offered=offered)
        await self._deliver(RelaySession(client), mail_from, rcpt, content, reused=False)

    async def _open(self, host: str, port: int, *, offered: bool, probe: bool = False) -> aiosmtplib.SMTP:
        """A new relay session, logged in where configured. `offered`: STARTTLS if the relay offers
        it, unverified; a failed handshake raises `HandshakeFailed` for the caller to go again in
        clear, and a session left in clear raises `RelayNotEncrypted` rather than send the password in it.
        While the relay refuses our login a `probe` tries one mechanism, and a send (and a probe before
        its time) raises that refusal without connecting (`gateway.mailauth.RelayLogins`)."""
        login = bool(self.cfg.relay_username and self.password)
        if login:
            self.logins.check(probe=probe)
        client = aiosmtplib.SMTP(
            hostname=host,
            port=port,
            local_hostname=self.hostname,
            timeout=COMMAND_TIMEOUT,
            **required_tls(self.cfg, self.ca_file),
        )
        try:
            await client.connect()
            if offered:
                await starttls_if_offered(client)
                if client.get_transport_info("sslcontext") is not None:
                    self.clear_login.encrypted()
                elif not self.clear_login.allowed:
                    raise self.clear_login.refuse(NOT_OFFERED)
            if login:
                user, password = self.cfg.relay_username, self.password
                assert user is not None and password is not None
                await log_in(client, user, password, probe=probe, logins=self.logins)
        except BaseException as exc:
            await _end(client, exc)
            if (hint := implicit_tls_hint(exc, port, self.cfg)) is not None:
                raise hint from exc
            _raise_judged(exc, host, self.ca_file)
        return client

    async def _deliver(
        self, session: RelaySession, mail_from: str, rcpt: str, content: bytes, *, reused: bool
    ) -> None:
        """The mail on an established session, kept for the next mail if its transaction ended:
        with the dot answered 250, or refused by a reply the next mail's RSET clears (RFC 5321
        4.1.1.5). Any other end (PossiblyDeliveredError, a timeout, a lost connection, 421) closes it.
        A `reused` session begins with RSET; `SessionGone` says it was dead before any of the mail went."""
        client = session.client
        try:
            if reused:
                await _reset(client)
            await transaction(client, mail_from, rcpt, content, reused=reused)
        except SessionGone:
            raise
        except BaseException as exc:
            if isinstance(exc, Exception) and _transaction_ended(exc) and session.alive:
                await self.sessions.keep(session)
            else:
                await _end(client, exc)
            self._say_null_refused(exc, mail_from)
            _raise_judged(exc, self.cfg.relay_addr[0], self.ca_file)
        session.mails += 1
        self.logins.mail_taken()  # a 454 of a login meanwhile is over: status says so no more
        if not mail_from:
            self._null_refused = False
        await self.sessions.keep(session)

    def _say_null_refused(self, exc: BaseException, mail_from: str) -> None:
        """A relay refusing the null sender fails every bounce: the admin hears it once, with the fix."""
        if mail_from or self._null_refused or not _null_sender_refusal(exc):
            return
        self._null_refused = True
        assert isinstance(exc, aiosmtplib.SMTPSenderRefused)
        host, port = self.cfg.relay_addr
        log.error(
            "mail.relay_refuses_null_sender",
            relay=f"{host}:{port}",
            reply=f"{exc.code} {exc.message}",
            login=self.cfg.relay_username,
            note=NULL_SENDER_REFUSED,
        )


async def _reset(client: aiosmtplib.SMTP) -> None:
    """RSET first on a kept session: it clears what a refused transaction left (RFC 5321 4.1.1.5),
    and any answer but 250 leaves the session for a new one before anything of the mail is sent."""
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise SessionGone() from exc


async def _end(client: aiosmtplib.SMTP, exc: BaseException) -> None:
    """A session not kept: QUIT where it still talks, as aiosmtplib's `async with` ended it; only
    closed when the send was cancelled (a stop gave up on it), lost, or timed out."""
    lost = isinstance(exc, (ConnectionError, TimeoutError)) or not client.is_connected
    if lost or not isinstance(exc, Exception):
        client.close()
    else:
        await quit_session(client, COMMAND_TIMEOUT)


def _transaction_ended(exc: Exception) -> bool:
    """A refusal the session outlives (5xx to MAIL, 4xx or 5xx to RCPT, DATA or the dot, or a mail
    failed before MAIL): RSET starts the next mail clean. 421 closes the session (RFC 5321 3.8), as
    does a 4xx to MAIL, a refused greeting or login, or an answer that could not be read."""
    reply: BaseException = exc
    if isinstance(exc, PermanentMailError):
        if exc.__cause__ is None:
            return True  # refused before MAIL (SMTPUTF8 not offered): nothing was sent
        reply = exc.__cause__
    if isinstance(reply, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in reply.recipients]
    elif isinstance(reply, (aiosmtplib.SMTPHeloError, aiosmtplib.SMTPAuthenticationError)):
        return False
    elif isinstance(reply, aiosmtplib.SMTPSenderRefused) and reply.code < 500:
        # 452 4.5.3 "too many mails on this connection": kept, the session answered every next
        # mail the same (190 of 200 deferred in 15 s). The next mail opens a new one.
        return False
    elif isinstance(reply, aiosmtplib.SMTPResponseException):
        codes = [reply.code]
    else:
        return False
    return bool(codes) and all(400 <= code < 600 and code != 421 for code in codes)


def _raise_judged(exc: BaseException, host: str, ca_file: Path | None) -> NoReturn:
    """What a failed send raises: a 5xx about the mail is `PermanentMailError`, the relay's
    certificate failing its check `RelayCertificateError`; anything else as it came, tried again."""
    judged = _judged(exc, host, ca_file) if isinstance(exc, Exception) else exc
    if judged is exc:
        raise exc
    raise judged from exc


def _judged(exc: Exception, host: str, ca_file: Path | None) -> Exception:
    if (missing := no_starttls(exc, host)) is not None:
        return missing
    if isinstance(exc, ssl.SSLCertVerificationError):
        return RelayCertificateError(untrusted(host, exc, ca_file))
    if isinstance(exc, aiosmtplib.SMTPConnectError) and isinstance(
        exc.__cause__, ssl.SSLCertVerificationError
    ):
        # Implicit TLS (`relay_implicit_tls`): the check fails within the connection.
        return RelayCertificateError(untrusted(host, exc.__cause__, ca_file))
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # The one recipient refused: for good only with a 5xx (a 450 greylisting or 452 is "later").
        refusals = exc.recipients
        if refusals and all(500 <= r.code < 600 and not setup_refusal(r.code, r.message) for r in refusals):
            return PermanentMailError(str(exc))
        return exc
    if isinstance(exc, _SESSION_ERRORS) or (isinstance(exc, aiosmtplib.SMTPSenderRefused) and exc.sender):
        # A 5xx about the session (our relay login, its greeting, our sender), not about this
        # mail: retried, or one mistake in the relay's setup would fail the whole outbox at once.
        return exc
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if 500 <= exc.code < 600 and not setup_refusal(exc.code, exc.message):
            why = f"; {NULL_SENDER_REFUSED}" if _null_sender_refusal(exc) else ""
            return PermanentMailError(f"{exc.code} {exc.message}{why}")
    return exc


def _null_sender_refusal(exc: BaseException) -> bool:
    return (
        isinstance(exc, aiosmtplib.SMTPSenderRefused)
        and exc.sender == ""
        and 500 <= exc.code < 600
        and not setup_refusal(exc.code, exc.message)
    )


def build_mailer(cfg: Config) -> Mailer:
    """The relay from `[mail] relay`: SMTP, or a local capture directory (`maildir:DIR`)."""
    capture = cfg.mail.capture_dir
    if capture is not None:
        return CaptureMailer(cfg.path(capture))
    mailer = SmtpRelayMailer(
        cfg.mail, cfg.gateway.hostname, cfg.mail.relay_secret(cfg.base_dir), relay_ca_file(cfg)
    )
    if cfg.mail.relay_username:  # the failed logins' budget across restarts, of this relay and account
        host, port = cfg.mail.relay_addr
        kept = KeptLogins(cfg.state_dir / KEPT_FILE, relay=f"{host}:{port}", user=cfg.mail.relay_username)
        mailer.logins.keep(kept)
    return mailer
