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
with the relay's TLS is `gateway.mailtls`'.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import itertools
import os
import re
import ssl
import termios
import time
from pathlib import Path
from typing import NoReturn, Protocol

import aiosmtplib
import structlog
from aiosmtplib.protocol import SMTPProtocol

from gateway.config import Config
from gateway.configservices import WHEN_OFFERED, MailSection
from gateway.filemodes import private_dir, write_private_bytes
from gateway.mailheaders import ascii_address
from gateway.mailsessions import IDLE_SECONDS, MAILS_PER_SESSION, IdleSessions, RelaySession, quit_session
from gateway.mailtls import (
    HandshakeFailed,
    RelayCertificateError,
    relay_ca_file,
    required_tls,
    starttls_if_offered,
    untrusted,
)

log = structlog.get_logger(__name__)


class PermanentMailError(Exception):
    """The relay refused the mail for good (5xx)."""


class PossiblyDeliveredError(Exception):
    """The relay was sent the whole mail, final dot included, and gave no answer to it.

    Not a failed connection: a relay that stores the mail before it answers (a content filter
    slower than the wait, a crash or a dropped connection after the dot) has it, and sending it
    again delivers it twice. The worker sends it again a few times at most (`UNANSWERED_SENDS`).
    """


class Mailer(Protocol):
    async def send(self, mail_from: str, rcpt: str, content: bytes) -> None: ...


_SESSION_ERRORS = (
    aiosmtplib.SMTPAuthenticationError,
    aiosmtplib.SMTPHeloError,
    aiosmtplib.SMTPConnectResponseError,
    # MAIL FROM names the gateway's own sender (or <>): refusing it is about our setup, not the mail
    # (but for a refusal of the size it declared, failed at once by `_transaction`).
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


def _too_big(code: int, message: str) -> bool:
    """A refusal at MAIL for the size declared with SIZE=: 552 (RFC 1870 6.1), or any 5xx with
    the enhanced code 5.3.4 ("message too big for system", RFC 3463)."""
    if not 500 <= code < 600 or _setup_refusal(code, message):
        return False
    return code == 552 or message.lstrip().startswith("5.3.4")


# Each step of a relay session (the connection and its greeting, EHLO, STARTTLS, AUTH, RSET, MAIL,
# RCPT, DATA, QUIT) waits this long for the relay's answer.
COMMAND_TIMEOUT = 30.0
# The answer to the final dot alone: RFC 5321 4.5.3.2.6 asks for at least 10 minutes, as a relay's
# content filter may take minutes and a client that gives up sooner sends the mail again although
# the relay took it (30 s sent a company's bounces five times in ten minutes).
DOT_REPLY_TIMEOUT = 600.0
# The body's upload, up to the relay's host acknowledging its last byte: 10 MB (the size Postfix
# takes by default) at some 270 kbit/s. A relay that stops reading past it is left for a retry.
UPLOAD_TIMEOUT = 300.0
UPLOAD_LOOK = 0.02  # seconds between looks at what is left of the body to send
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
    ) -> None:
        self.cfg = cfg
        self.hostname = hostname
        # Read once by build_mailer at start, so a missing relay_password_file stops the start.
        self.password = password
        # Resolved beside the config and checked by build_mailer; read again at each connection, so
        # a renewed CA bundle is taken without a restart.
        self.ca_file = ca_file
        self._tls_failing: str | None = None  # the last failed opportunistic handshake, said once
        self.sessions = IdleSessions(idle_seconds, mails_per_session)

    async def close(self) -> None:
        if closed := await self.sessions.close():
            log.info("mail.relay_sessions_closed", sessions=closed)

    async def send(self, mail_from: str, rcpt: str, content: bytes) -> None:
        session = self.sessions.take()
        if session is not None:
            try:
                await self._deliver(session, mail_from, rcpt, content, reused=True)
                return
            except _Gone as exc:
                # Closed by the relay while idle (its timeout, a restart): nothing of this mail
                # reached it, so it goes at once on a new connection, as one send.
                session.client.close()
                log.debug("mail.relay_session_gone", after_mails=session.mails, error=repr(exc.__cause__))
        host, port = self.cfg.relay_addr
        if self.cfg.relay_starttls != WHEN_OFFERED:
            await self._session(host, port, mail_from, rcpt, content, offered=False)
            return
        try:
            await self._session(host, port, mail_from, rcpt, content, offered=True)
        except HandshakeFailed as exc:
            # Postfix `may`: the mail goes in clear rather than not at all, and the admin hears why.
            said = f"{type(exc.__cause__).__name__}: {exc.__cause__}"
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

    async def _session(
        self, host: str, port: int, mail_from: str, rcpt: str, content: bytes, *, offered: bool
    ) -> None:
        """A new relay session, and the mail on it. `offered`: STARTTLS if the relay offers it,
        unverified; a failed handshake raises `HandshakeFailed` for the caller to go again in clear."""
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
            if self.cfg.relay_username and self.password:
                await client.login(self.cfg.relay_username, self.password)
        except BaseException as exc:
            await _end(client, exc)
            _raise_judged(exc, host, self.ca_file)
        await self._deliver(RelaySession(client), mail_from, rcpt, content, reused=False)

    async def _deliver(
        self, session: RelaySession, mail_from: str, rcpt: str, content: bytes, *, reused: bool
    ) -> None:
        """The mail on an established session, kept for the next mail if its transaction ended:
        with the dot answered 250, or refused by a reply the next mail's RSET clears (RFC 5321
        4.1.1.5). Any other end (PossiblyDeliveredError, a timeout, a lost connection, 421) closes it.
        A `reused` session begins with RSET; `_Gone` says it was dead before any of the mail went."""
        client = session.client
        try:
            if reused:
                await _reset(client)
            await _transaction(client, mail_from, rcpt, content, reused=reused)
        except _Gone:
            raise
        except BaseException as exc:
            if isinstance(exc, Exception) and _transaction_ended(exc) and session.alive:
                await self.sessions.keep(session)
            else:
                await _end(client, exc)
            _raise_judged(exc, self.cfg.relay_addr[0], self.ca_file)
        session.mails += 1
        await self.sessions.keep(session)


class _Gone(Exception):
    """A kept session the relay closed while it was idle (EOF, a reset, 421 to RSET or MAIL)."""


async def _reset(client: aiosmtplib.SMTP) -> None:
    """RSET first on a kept session: it clears what a refused transaction left (RFC 5321 4.1.1.5),
    and any answer but 250 leaves the session for a new one before anything of the mail is sent."""
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise _Gone() from exc


async def _end(client: aiosmtplib.SMTP, exc: BaseException) -> None:
    """A session not kept: QUIT where it still talks, as aiosmtplib's `async with` ended it; only
    closed when the send was cancelled (a stop gave up on it), lost, or timed out."""
    lost = isinstance(exc, (ConnectionError, TimeoutError)) or not client.is_connected
    if lost or not isinstance(exc, Exception):
        client.close()
    else:
        await quit_session(client, COMMAND_TIMEOUT)


def _transaction_ended(exc: Exception) -> bool:
    """A refusal the session outlives (4xx or 5xx to MAIL, RCPT, DATA or the dot, or a mail failed
    before MAIL): RSET starts the next mail clean. 421 closes the session (RFC 5321 3.8), as does a
    refused greeting or login, or an answer that could not be read."""
    reply: BaseException = exc
    if isinstance(exc, PermanentMailError):
        if exc.__cause__ is None:
            return True  # refused before MAIL (SMTPUTF8 not offered): nothing was sent
        reply = exc.__cause__
    if isinstance(reply, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in reply.recipients]
    elif isinstance(reply, (aiosmtplib.SMTPHeloError, aiosmtplib.SMTPAuthenticationError)):
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
    if isinstance(exc, ssl.SSLCertVerificationError):
        return RelayCertificateError(untrusted(host, exc, ca_file))
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # The one recipient refused: for good only with a 5xx (a 450 greylisting or 452 is "later").
        refusals = exc.recipients
        if refusals and all(500 <= r.code < 600 and not _setup_refusal(r.code, r.message) for r in refusals):
            return PermanentMailError(str(exc))
        return exc
    if isinstance(exc, _SESSION_ERRORS):
        # A 5xx about the session (our relay login, its greeting, our sender), not about this
        # mail: retried, or one mistake in the relay's setup would fail the whole outbox at once.
        return exc
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if 500 <= exc.code < 600 and not _setup_refusal(exc.code, exc.message):
            return PermanentMailError(f"{exc.code} {exc.message}")
    return exc


_LINE_END = re.compile(rb"\r\n|\r|\n")
_DOT_LINE = re.compile(rb"^\.", re.MULTILINE)


async def _transaction(
    client: aiosmtplib.SMTP, mail_from: str, rcpt: str, content: bytes, *, reused: bool = False
) -> None:
    """MAIL, RCPT and DATA as aiosmtplib's `sendmail` sends them, but for the answer to the final dot.

    `sendmail` (and `data`) waits as long for that answer as for `354`: COMMAND_TIMEOUT for both
    sent a mail again that a slow relay had taken, DOT_REPLY_TIMEOUT for both would let a relay
    stuck at `DATA` hold a send for ten minutes. MAIL with `<>` for a bounce's empty sender, and
    one recipient refused raises `SMTPRecipientsRefused`, as `sendmail` did. On a `reused` session
    a relay gone at MAIL (closed, or 421) is `_Gone`: none of the mail was sent.
    """
    body = _LINE_END.sub(b"\r\n", content)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    options = await _mail_options(client, content, len(body))
    needs = _needs_smtputf8(mail_from, rcpt, body)
    if needs is not None:
        if not client.supports_extension("smtputf8"):
            # A relay's extensions do not change from one try to the next: retried, such a mail
            # failed for the five days of retries with an encoding error that named nothing to fix.
            raise PermanentMailError(f"the relay does not offer SMTPUTF8, needed for {needs}")
        options.append("SMTPUTF8")
    else:
        mail_from, rcpt = _ascii(mail_from), _ascii(rcpt)
    encoding = "ascii" if needs is None else "utf-8"
    try:
        await client.mail(mail_from, options=options, encoding=encoding)
    except aiosmtplib.SMTPServerDisconnected as exc:
        if reused:
            raise _Gone() from exc
        raise
    except aiosmtplib.SMTPSenderRefused as exc:
        if reused and exc.code == 421:
            raise _Gone() from exc
        if options and options[0].startswith("SIZE=") and _too_big(exc.code, exc.message):
            # RFC 1870: refused for the size the mail declared, not for our sender or setup. It
            # would be refused so for the five days of retries; it fails now (a fallback copy, if
            # it has one, goes at once).
            raise PermanentMailError(f"{exc.code} {exc.message} (the mail is {len(body)} bytes)") from exc
        raise
    try:
        await client.rcpt(rcpt, encoding=encoding)
    except aiosmtplib.SMTPRecipientRefused as exc:
        raise aiosmtplib.SMTPRecipientsRefused([exc]) from exc
    started = await client.execute_command(b"DATA")
    if started.code != 354:
        raise aiosmtplib.SMTPDataError(started.code, started.message)
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    # The end of the mail goes only once the body has left: a relay lost before it never had the
    # whole mail, and the send is simply tried again (a 2.9 MB billing mail whose relay reset the
    # link after 64 KiB was given up on, after three such drops, as "most likely arrived").
    await _upload(client, protocol, _DOT_LINE.sub(b"..", body))
    try:
        protocol.write(b".\r\n")
    except aiosmtplib.SMTPServerDisconnected as exc:
        client.close()
        raise _lost_before_end() from exc
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
        # A reset (ConnectionResetError) is no sign of a mail not taken: a firewall resets an idle
        # connection while the relay's filter works, and a relay that stored the mail may crash.
        client.close()
        raise PossiblyDeliveredError(
            "the relay took the whole mail but closed the connection without answering;"
            " it may have delivered it"
        ) from exc
    if answer.code != 250:
        raise aiosmtplib.SMTPDataError(answer.code, answer.message)


async def _upload(client: aiosmtplib.SMTP, protocol: SMTPProtocol, body: bytes) -> None:
    """Writes the body and waits, up to UPLOAD_TIMEOUT, until none of it is left on this side.

    Left on this side are the bytes in the transport's buffer and those in the kernel's send queue
    the relay's host has not acknowledged (SIOCOUTQ): over STARTTLS the TLS transport hands all of
    its data to the socket's transport at once, and its own buffer is empty while megabytes wait.
    Bytes acknowledged may still be unread by the relay when it fails; a mail that small is not
    told apart from one the relay took whole (`PossiblyDeliveredError`).
    """
    protocol.write(body)
    transport = protocol.transport
    loop = asyncio.get_running_loop()
    deadline = loop.time() + UPLOAD_TIMEOUT
    while True:
        if protocol.transport is not transport or transport is None or transport.is_closing():
            client.close()
            raise _lost_before_end()
        if _unsent(transport) == 0:
            return
        if loop.time() >= deadline:
            client.close()
            raise aiosmtplib.SMTPTimeoutError(
                f"the relay did not take the mail's {len(body)} bytes within {_span(UPLOAD_TIMEOUT)};"
                " its end was not sent, so it was not delivered"
            )
        await asyncio.sleep(UPLOAD_LOOK)


def _unsent(transport: asyncio.BaseTransport) -> int:
    size = transport.get_write_buffer_size() if isinstance(transport, asyncio.WriteTransport) else 0
    sock = transport.get_extra_info("socket")
    if sock is None or not hasattr(termios, "TIOCOUTQ"):
        return size
    queued = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, queued)  # SIOCOUTQ on Linux
    except OSError:
        return size
    return size + queued[0]


def _lost_before_end() -> aiosmtplib.SMTPServerDisconnected:
    return aiosmtplib.SMTPServerDisconnected(
        "the relay closed the connection before the end of the mail was sent; it was not delivered"
    )


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


def _needs_smtputf8(mail_from: str, rcpt: str, body: bytes) -> str | None:
    """What of the mail needs SMTPUTF8 (RFC 6531), in words for the admin, or None for a mail that
    goes without it.

    The daemon takes SMTPUTF8 mail, so an answer, receipt or DSN may go to an address with a
    non-ASCII local part or domain. A domain alone goes in A-labels (`jan@xn--w-uga1v8h.pl`), even
    to a relay that offers SMTPUTF8: the relay's offer says nothing of the hops after it, and an
    ASCII envelope passes all of them. A local part that is not ASCII, a domain with no A-label form
    and raw UTF-8 in the header section (RFC 6532) need SMTPUTF8; 8-bit bytes in the body alone need
    only BODY=8BITMIME. `body` has CR LF line ends.
    """
    for who, address in (("", rcpt), ("the sender ", mail_from)):
        if ascii_address(address) is None:
            local = address.rpartition("@")[0]
            why = ", whose domain has no IDNA A-label form" if local and local.isascii() else ""
            return f"{who}{address}{why}"
    head = b"" if body.startswith(b"\r\n") else body.partition(b"\r\n\r\n")[0]
    if not head.isascii():
        return "the mail's headers in UTF-8"
    return None


def _ascii(address: str) -> str:
    """The envelope address of a mail `_needs_smtputf8` lets go without SMTPUTF8, in ASCII."""
    return ascii_address(address) or address


def _span(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} s"


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
    return SmtpRelayMailer(
        cfg.mail, cfg.gateway.hostname, cfg.mail.relay_secret(cfg.base_dir), relay_ca_file(cfg)
    )
