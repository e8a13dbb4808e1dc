"""One mail's transaction with the relay on an established session: MAIL, RCPT, DATA, the body's
upload and the wait for the answer to its end, and what each refusal or silence means.

Apart from `gateway.mailer`, which sets the sessions up, keeps them for the next mail and judges a
failed send: the rules here are about what reached the relay (the whole mail, part of it, none of
it), on which sending it again, once more or never, depends.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import re
import termios
from contextvars import ContextVar
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

from gateway.forwardcoding import seven_bit
from gateway.mailauth import greet
from gateway.mailheaders import ascii_address


class PermanentMailError(Exception):
    """The relay refused the mail for good (5xx)."""


class PossiblyDeliveredError(Exception):
    """The relay was sent the whole mail, final dot included, and gave no answer to it.

    Not a failed connection: a relay that stores the mail before it answers (a content filter
    slower than the wait, a crash or a dropped connection after the dot) has it, and sending it
    again delivers it twice. The worker sends it again a few times at most (`UNANSWERED_SENDS`).
    """


class SessionGone(Exception):
    """A kept session the relay closed while it was idle (EOF, a reset, 421 to RSET or MAIL), or
    that takes no more mail (a 4xx to MAIL)."""


@dataclass
class SendMark:
    """Whether a send's final dot has gone: from then on the relay may have the mail. Read by the
    outbox worker when a stop cuts a send off (`OutboxWorker.stop`): such a send counts as one the
    relay took without answering, as it would have at the dot's timeout."""

    whole: bool = False


# The send's mark, set by the task that sends (each send is its own task, with its own context).
SEND_MARK: ContextVar[SendMark | None] = ContextVar("send_mark", default=None)


# 5xx texts that blame the gateway's relay setup, not the mail or its recipient: a login is needed
# (530), or the relay does not relay for us. Postfix, Exim and Exchange word them like this.
_SETUP_REFUSAL = re.compile(
    r"authentication (is )?required|must (first )?authenticate|relay(ing)? (access )?(is )?"
    r"(denied|not permitted|prohibited|not allowed)|not permitted to relay|unable to relay",
    re.IGNORECASE,
)


def setup_refusal(code: int, message: str) -> bool:
    return code == 530 or _SETUP_REFUSAL.search(message) is not None


def _too_big(code: int, message: str) -> bool:
    """A refusal at MAIL for the size declared with SIZE=: 552 (RFC 1870 6.1), or any 5xx with
    the enhanced code 5.3.4 ("message too big for system", RFC 3463)."""
    if not 500 <= code < 600 or setup_refusal(code, message):
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

_LINE_END = re.compile(rb"\r\n|\r|\n")
_DOT_LINE = re.compile(rb"^\.", re.MULTILINE)


async def transaction(
    client: aiosmtplib.SMTP, mail_from: str, rcpt: str, content: bytes, *, reused: bool = False
) -> None:
    """MAIL, RCPT and DATA as aiosmtplib's `sendmail` sends them, but for the answer to the final dot.

    `sendmail` (and `data`) waits as long for that answer as for `354`: COMMAND_TIMEOUT for both
    sent a mail again that a slow relay had taken, DOT_REPLY_TIMEOUT for both would let a relay
    stuck at `DATA` hold a send for ten minutes. MAIL with `<>` for a bounce's empty sender, and
    one recipient refused raises `SMTPRecipientsRefused`, as `sendmail` did. On a `reused` session
    a relay gone at MAIL (closed, or 421) is `SessionGone`: none of the mail was sent.
    """
    await _greeted(client)
    if not content.isascii() and not client.supports_extension("8BITMIME"):
        content = seven_bit(content)  # a forwarded bounce's 8-bit original, as a base64 file
    body = _LINE_END.sub(b"\r\n", content)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    options = _mail_options(client, content, len(body))
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
            raise SessionGone() from exc
        raise
    except aiosmtplib.SMTPSenderRefused as exc:
        if reused and 400 <= exc.code < 500:
            # Closing (421), or its limit for one connection reached (452 4.5.3 too many mails):
            # the mail goes at once on a new session.
            raise SessionGone() from exc
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
    if (mark := SEND_MARK.get()) is not None:
        mark.whole = True
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


async def _greeted(client: aiosmtplib.SMTP) -> None:
    """EHLO (or HELO) done: the relay's extensions are known."""
    if client.is_ehlo_or_helo_needed:
        await greet(client)  # a relay without ESMTP: no extensions, so no parameters either


def _mail_options(client: aiosmtplib.SMTP, content: bytes, size: int) -> list[str]:
    """`SIZE` where the relay offers it (RFC 1870, as `sendmail` sent it), and `BODY=8BITMIME` for
    a mail with 8-bit bytes when the relay offers it (RFC 6152).

    Forwarded bounces carry their original's 8-bit text as it came; a relay told nothing may take
    such a body as 7-bit and mangle it, or refuse it. A relay without 8BITMIME is sent the
    original as a base64 file instead (`forwardcoding.seven_bit`): every other mail is 7-bit.
    """
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
