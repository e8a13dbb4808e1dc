"""The gateway's aiosmtpd servers: enhanced status codes on every reply, a cheap address parser
that reads a number's local part as written, SMTPUTF8 and MAIL's `AUTH=` parameter taken on both
ports, SMTP DSN's parameters (RFC 3461, `gateway.smtp.dsnparams`) read as written on both, and the
relay port's server, which offers STARTTLS but never AUTH.

The hooks that decide per command live with each port (gateway/smtp/relay.py, submission.py).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from asyncio import sslproto
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import structlog
from aiosmtpd.smtp import TLSSetupException, syntax

from acl.logins import client_key
from gateway.config import Config
from gateway.smtp import badpath, dsnparams, postmaster, replies
from gateway.smtp.addressing import BadNumber, is_number_local, number_path, split_address
from gateway.smtp.guard import GuardedSMTP
from gateway.smtp.stockreplies import REWRITE, with_prefix_code
from gateway.smtp.tlsslots import HandshakeSlots
from gateway.tlscert import credential_or_path, tls_context
from smsc.logthrottle import LogThrottle

log = structlog.get_logger(__name__)
# A client set to implicit TLS (Outlook's "SSL/TLS") on a plain or STARTTLS port opens with a TLS
# handshake record (0x16, version 3.x): no line ever ends, the client reads our banner as TLS, fails
# and hangs up, and nothing was logged. One line a second at most, as a flood of them may come.
IMPLICIT_TLS = "a TLS handshake on the plain/STARTTLS port: the client wants implicit TLS (port 465)"
_implicit_tls = LogThrottle(log, 1.0, time.monotonic)

# STARTTLS handshakes under way at once per port, and how long one may take. asyncio's SSLProtocol
# costs some 300 kB per handshake and the memory does not go back to the system: waves of 500
# STARTTLS sessions that stalled (nothing after STARTTLS, half a ClientHello) for asyncio's default of
# 60 s each took the daemon from 139 to 478 MB for good. Past the cap STARTTLS hears 454 (RFC 3207 4:
# the client may try again later, or go on without TLS); a real client's handshake takes milliseconds.
# At the cap an address holding more slots than the newcomer's gives one way (`tlsslots`).
TLS_HANDSHAKES_MAX = 50
TLS_HANDSHAKE_SECONDS = 10.0
# A path without quoting, comments or source routes: dot-atom local part and a plain domain.
_PLAIN_PATH = re.compile(r"\s*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+)>(.*)\Z", re.DOTALL)
_Asks = TypeVar("_Asks")  # what a command's DSN parameters ask: `dsnparams.MailAsks` or `RcptAsks`
_AUTH_PARAM = re.compile(r"\s+AUTH=\S*", re.IGNORECASE)
# Bytes of a command line that are not UTF-8, as aiosmtpd's surrogateescape decoding leaves them.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
# aiosmtpd's reply to MAIL or RCPT when `_getaddr` gives no address; the gateway's own says why
# (`badpath`, or the refusals below).
_MALFORMED = "553 5.1.3 Error: malformed address"
NOT_UTF8_PATH = "553 5.1.3 Address not valid: its non-ASCII bytes are not UTF-8"
CONTROL_IN_PATH = "553 5.1.3 Address not valid: it holds a control character ({}), which no address may hold"
CONTROL_IN_PARAMS = "501 5.5.4 Syntax error in parameters: a control character ({}), which none may hold"
# RFC 5321 4.1.2: a path's characters, quoted ones too, are printable ASCII (and UTF-8, RFC 6531),
# and so are a parameter's (esmtp-value).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
COMMENT_IN_NUMBER = (
    "553 5.1.3 <{}>: a comment in a number address is not read: write the number alone"
    " (digits, + first, spaces, dashes, dots, slashes or brackets between them)"
)


class GatewaySMTP(GuardedSMTP):
    """aiosmtpd's server with RFC 3463 enhanced codes on the replies it writes itself.

    SMTPUTF8 (RFC 6531) is offered: Postfix bounces a mail that asks for it (`5.6.7 SMTPUTF8 is
    required, but was not offered`) to a server that does not, and the gateway reads raw UTF-8
    headers as they come. A UTF-8 address is then read like any other (the ACL has ASCII users only).
    """

    _REWRITE: ClassVar[dict[str, str]] = REWRITE
    offers_auth: ClassVar[bool] = True  # whether EHLO may advertise AUTH (aiosmtpd's decision) at all
    _path_refusal: str | None = None  # why `_getaddr` read no address, for the 553 that follows
    # The DSN request of the RCPT being read, for the handler's RCPT hook (None: none asked).
    rcpt_asks: dsnparams.RcptAsks | None = None
    # The postmaster or abuse@ address the transaction's RCPT took: the 250 after DATA names it
    # (`postmaster.said_to`), the envelope being gone by then.
    _role_address: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("enable_SMTPUTF8", True)
        super().__init__(*args, **kwargs)

    def wants_implicit_tls(self) -> None:
        sockname = self.transport.get_extra_info("sockname") if self.transport is not None else None
        port = sockname[1] if isinstance(sockname, tuple) and len(sockname) > 1 else None
        ip = self._peer_ip()
        _implicit_tls.warning("smtp.implicit_tls_on_plain_port", ip=ip, port=port, note=IMPLICIT_TLS)

    def _reply_text(self, status: str) -> str:
        if status == _MALFORMED and self._path_refusal is not None:
            status, self._path_refusal = self._path_refusal, None
        status = self._REWRITE.get(status) or with_prefix_code(status)
        if status == replies.TOO_BIG:  # aiosmtpd's wording rewritten; the limit is the server's
            status = replies.too_big(self.data_size_limit)
        if self._role_address is not None and status.startswith("250 "):
            status = postmaster.said_to(self._role_address, status)
        if not status.isascii() and _NOT_UTF8.search(status):
            # An argument aiosmtpd echoes (VRFY, HELP) with bytes that are no UTF-8: a reply
            # line is, and writing it would fail the session.
            status = _NOT_UTF8.sub("?", status)
        gate = getattr(self.event_handler, "gate", None)
        if gate is not None and status[3:4] != "-":  # not a continuation
            gate.replies[status[:3]] += 1
        return super()._reply_text(status)

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            # The client's doing, not a fault of ours: plain text after STARTTLS, a scanner, a
            # client with no protocol version in common, a hang-up mid-handshake. aiosmtpd closes
            # the connection without a reply (there is no channel left to write one on).
            log.info("smtp.tls_failed", ip=self._peer_ip(), error=repr(error.__cause__))
            return replies.TEMP_FAILURE  # not sent: aiosmtpd only closes after a failed handshake
        if self.envelope is not None and self.envelope.original_content is not None:
            # The DATA hook failed (the mail was read, its answer is the handler's 451): the
            # transaction is over, as after any answer to DATA. aiosmtpd kept the envelope, and the
            # client's next MAIL got "503 nested MAIL command" until it reconnected.
            self._set_post_data_state()
        return await super().handle_exception(error)

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg: str) -> None:
        """aiosmtpd's STARTTLS (1.4.6), with the port's cap on handshakes under way (shared out by
        address at the cap: `tlsslots`), a 10 s bound on each (`TLS_HANDSHAKES_MAX`,
        `TLS_HANDSHAKE_SECONDS`), and a handshake the connection's close cut short (a session
        evicted at the cap meanwhile) ending the session as a lost connection.
        asyncio wakes the handshake's waiter without an error then, and aiosmtpd went on reading a
        closed channel: the session's task stayed pending until the idle timeout, or was destroyed
        pending ("Task was destroyed but it is pending! ... _handle_client()")."""
        if self._tls_protocol is not None:
            # RFC 3207 4.2: once TLS is on, STARTTLS is not offered; aiosmtpd would start a second
            # TLS layer inside the first.
            await self.push(replies.TLS_ALREADY_ACTIVE)
            return
        if arg:
            await self.push("501 Syntax: STARTTLS")
            return
        if not self.tls_context:
            await self.push("454 TLS not available")
            return
        slots: HandshakeSlots[Any] = self.event_handler.tls_handshakes
        key = self._key or client_key(self._peer_ip())
        taken, gone = slots.taken(self, key, self.loop.time(), TLS_HANDSHAKES_MAX)
        if not taken:
            self.guard.bite("tls_handshakes", ip=self._peer_ip(), under_way=len(slots), held=slots.held(key))
            await self.push(replies.TLS_BUSY)
            return
        if gone is not None:
            gone.cut_handshake()
        try:
            await self._handshake()
        finally:
            slots.release(self)

    def cut_handshake(self) -> None:
        """Give this session's STARTTLS slot to a newcomer (`tlsslots`): the connection is dropped, as
        after a handshake past its bound; the session then ends as a lost connection (`_handshake`)."""
        self.guard.bite("tls_handshake_evicted", ip=self._peer_ip())
        below = self._original_transport or self.transport  # None until the 220 went out
        if below is not None:
            below.abort()

    async def _handshake(self) -> None:
        await self.push("220 Ready to start TLS")
        waiter = self.loop.create_future()
        self._tls_protocol = sslproto.SSLProtocol(
            self.loop,
            self,
            self.tls_context,
            waiter,
            server_side=True,
            ssl_handshake_timeout=TLS_HANDSHAKE_SECONDS,
        )
        # As aiosmtpd: the original transport is kept to be closed when the connection is lost.
        self._original_transport = self.transport
        assert self._original_transport is not None
        self._original_transport.set_protocol(self._tls_protocol)
        self.transport = self._tls_protocol._app_transport
        self._tls_protocol.connection_made(self._original_transport)
        try:
            await waiter
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise TLSSetupException() from error
        if self.transport is None or self.transport.is_closing():
            raise TLSSetupException() from ConnectionAbortedError(
                "connection closed during the TLS handshake"
            )

    async def _dsn_params(
        self, arg: str | None, keys: tuple[str, ...], read: Callable[[dict[str, str]], _Asks | None]
    ) -> tuple[str | None, _Asks | None] | None:
        """`arg` without RFC 3461's parameters `keys`, and what they ask (`read`), for MAIL or RCPT;
        only after EHLO (a HELO session's line goes on as it came). None where they break RFC 3461's
        syntax: the 501 is said, and the command goes no further."""
        if arg is None or self.session is None or not self.session.extended_smtp:
            return arg, None
        try:
            arg, params = dsnparams.split_params(arg, keys)
            return arg, read(params)
        except dsnparams.BadParam as exc:
            await self.push(str(exc))
            return None

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        """RFC 4954 5: MAIL's `AUTH=` parameter names who first submitted a mail; a server may ignore
        it. aiosmtpd refuses it (555), while relaying MTAs (Postfix: `AUTH=<>`) send it to servers
        that advertise AUTH. It proves nothing on either port (a login does, or the network): dropped."""
        if _controlled(arg):  # as written to `_getaddr`, which refuses it
            await super().smtp_MAIL(arg)
            return
        end = -1 if arg is None else arg.find(">")  # the path's end; AUTH's own value is <…> too
        if arg is not None and end >= 0 and "=" in arg[end + 1 :]:  # no parameter, no AUTH= to drop
            arg = arg[: end + 1] + _AUTH_PARAM.sub("", arg[end + 1 :])
        if (split := await self._dsn_params(arg, dsnparams.MAIL_KEYS, dsnparams.mail_asks)) is None:
            return
        arg, asks = split
        envelope = self.envelope
        began = envelope is not None and not envelope.mail_from
        if began:
            self._role_address = None
        await super().smtp_MAIL(arg)
        if asks is not None and began and envelope is not None and envelope.mail_from:
            envelope.__dict__["dsn_mail"] = asks  # taken: the mail's RET and ENVID

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        """RFC 3461's NOTIFY and ORCPT, read as written and handed to the RCPT hook (`rcpt_asks`)."""
        if _controlled(arg):  # as written to `_getaddr`, which refuses it
            await super().smtp_RCPT(arg)
            return
        if (split := await self._dsn_params(arg, dsnparams.RCPT_KEYS, dsnparams.rcpt_asks)) is None:
            return
        arg, self.rcpt_asks = split
        try:
            await super().smtp_RCPT(arg)
        finally:
            self.rcpt_asks = None
        if self.envelope is not None and (taken := self.envelope.__dict__.get("postmaster")):
            self._role_address = str(taken)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd parses every MAIL/RCPT address with the email package's full header grammar,
        # a tenth of the CPU per mail; plain <local@domain> (nearly all traffic) is parsed here.
        self._path_refusal = None
        if not arg.isascii() and _NOT_UTF8.search(arg):  # an ASCII line holds none of those bytes
            self._path_refusal = NOT_UTF8_PATH
            return None, None
        if (control := _CONTROL.search(arg)) is not None:
            # The grammar reads a NUL or a bare CR into the domain (`<anna@acme.example\x00evil>`),
            # and the hooks got it as an address: a sender taken with 250 where the relay port waits
            # for RCPT to tell a premium answer, a recipient echoed in the refusal. The whole line is
            # looked at: a quoted `>` (`<"a>b"@acme.example\x00evil>`) ends no path.
            path = _path_part(arg)
            in_path = control.start() < len(path) or '"' in path  # a quoted `>` may have cut it short
            refusal = CONTROL_IN_PATH if in_path else CONTROL_IN_PARAMS
            self._path_refusal = refusal.format(f"U+{ord(control.group()):04X}")
            return None, None
        m = _PLAIN_PATH.match(arg)
        if m is not None and not self._too_long(m.group(1)):
            return m.group(1), m.group(2).lstrip()
        # A number's local part as written: that grammar reads its brackets as a comment and drops
        # them with what they hold (`+48 (601) 123-923` became `+48 123-923`), which may leave
        # another valid number, a stranger's.
        number = number_path(arg)
        if number is not None and not self._too_long(number[0]):
            return number
        try:
            address, rest = super()._getaddr(arg)
        except Exception:  # whatever the grammar fails on, the fault is in the client's line
            # aiosmtpd catches only HeaderParseError; the email package's grammar also raises
            # IndexError (`x@`, `"a"@`: an empty domain), AttributeError (`a#@ [<`) and
            # UnboundLocalError (`\@[`) on lines it cannot read. Each was a 451 with a logged
            # traceback, as often as anyone reaching the port cared to send one; it is a malformed
            # address like `<x@>`, and nothing of ours failed.
            address, rest = None, None
        if address is None or _misread(arg, address, rest):
            # aiosmtpd's "Error: malformed address" said nothing of what was wrong
            self._path_refusal = badpath.refusal(arg, self.local_part_limit)
            return None, None
        if address and "(" in arg[: len(arg) - len(rest or "")] and _number_address(address):
            # A comment the grammar dropped from a number address: it may have been digits of the
            # number (or the number's name); refused, never read as the rest of the number.
            self._path_refusal = COMMENT_IN_NUMBER.format(address)
            return None, None
        return address, rest

    def _too_long(self, address: str) -> bool:
        return bool(self.local_part_limit) and len(address.rpartition("@")[0]) > self.local_part_limit


def _controlled(arg: str | None) -> bool:
    """Whether a MAIL or RCPT argument holds a control character: it goes to `_getaddr` as written,
    for the refusal. Dropping AUTH= or reading DSN parameters splits the line at whitespace (a bare
    CR, a tab, U+001F too) and at its first `>`, quoted or not, and so lost the character it held."""
    return arg is not None and _CONTROL.search(arg) is not None


def _path_part(arg: str) -> str:
    """The path of a MAIL or RCPT argument without its parameters: to the first `>` of a path in
    brackets (a quoted `>` cuts it short), else to the first space."""
    if arg.startswith("<"):
        end = arg.find(">")
        return arg if end < 0 else arg[: end + 1]
    return arg.partition(" ")[0]


def _misread(arg: str, address: str, rest: str | None) -> bool:
    """Whether the grammar read an address the line does not hold whole. It forgives a `<` left
    open (`<demo@example.com`: taken, and the SMS sent), stops a bracketed path at a character it
    cannot hold (`<601200109;ext=1@…>` read as `601200109`, its rest as parameters: aiosmtpd's bare
    501), and reads a path with no domain (`<48601200149>`: "Relay access denied") as an address.
    RFC 5321 4.1.2: a path is `<` local-part@domain `>`; only <Postmaster> needs no domain (4.5.1).
    It also closes a quote left open at the line's end: `<"601200001@sms.example.com>` was read as the
    local part `"601200001@sms.example.com>"` with no domain, "Relay access denied" to the address
    with `">` added, and a sender so written was "no user"."""
    read = arg[: len(arg) - len(rest or "")]  # the path as the grammar took it, parameters left
    if badpath.unclosed_quote(read):
        return True
    if arg.lstrip().startswith("<") and not read.rstrip().endswith(">"):
        return True
    return address not in ("", "<>") and "@" not in address and address.casefold() != "postmaster"


def _number_address(address: str) -> bool:
    """Whether the local part of a parsed address is only what a number's may hold."""
    try:
        local, _domain = split_address(address)
    except BadNumber:
        return False
    return is_number_local(local)


class RelaySMTP(GatewaySMTP):
    """The relay port's server: STARTTLS when the gateway has a certificate, and no AUTH at all.

    A company MTA whose policy sends only over TLS (Postfix `smtp_tls_security_level = encrypt`,
    Exchange with forced TLS) defers its mail for ever to a port without STARTTLS, so it is offered
    (RFC 3207), never required. aiosmtpd advertises AUTH on any listener with a TLS context once TLS
    is on; here it must not: after seeing it, Postfix adds `AUTH=<>` to MAIL and may try to log in,
    and a login means nothing on this port. So AUTH is neither advertised (RelayHandler.handle_EHLO
    reads `offers_auth`) nor run, before or after TLS.
    """

    offers_auth: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._auth_methods.clear()  # nothing to advertise, nothing aiosmtpd could run

    async def smtp_AUTH(self, arg: str) -> None:  # no @syntax: HELP does not list it either
        await self.push(replies.AUTH_NOT_OFFERED)


def relay_tls_context(cfg: Config) -> ssl.SSLContext | None:
    """The relay port's STARTTLS context: the submission port's certificate (configured, or the
    self-signed one the daemon made), or None without one or with `relay_starttls = false`.
    Raises ConfigError naming a file that cannot be used, so that a bad certificate stops the
    start instead of every session.

    Mail servers do not check the certificate of such opportunistic TLS (RFC 7435), so a
    self-signed one serves them as well as a bought one."""
    smtp = cfg.smtp
    if not smtp.relay_starttls or smtp.tls_cert_file is None or smtp.tls_key_file is None:
        return None
    cert, key = credential_or_path(cfg, smtp.tls_cert_file), credential_or_path(cfg, smtp.tls_key_file)
    return tls_context(cert, key, opportunistic=True)
