"""aiosmtpd's protocol with less work per command line, and replies of a pipelined group in one write.

Each mail costs at least four commands and replies, and the daemon's event loop is its bottleneck,
so the per-line overheads of aiosmtpd that buy nothing here are cut:
- Idle timeout: aiosmtpd cancels and creates a timer on every command. Here the deadline moves
  and the one armed timer, when it fires early, re-arms itself for the rest.
- Line logging: aiosmtpd runs every command line through a password-masking regex twice for its
  DEBUG and INFO records, which the root logger (WARNING) then drops; the command loop (aiosmtpd's,
  copied) asks once per line whether its logger takes INFO, and masks nothing when it does not.
- Reply steps: the subclasses' per-reply work (status codes, counts, progress) runs in plain
  methods (`_reply_text`) called by the one `push`, not in a coroutine per class for each reply.
- Replies (RFC 2920 PIPELINING): a client that pipelines sends MAIL, RCPT… and DATA in one write.
  The replies to MAIL, RCPT, RSET and NOOP are held while more whole command lines wait in the
  input, and go out with the next reply that is not held, in one write instead of one each
  (continuation lines of a multi-line reply likewise). A reply is never held once the input has
  no whole line left, so a client that waits for it always gets it; the order is the commands'.
- DATA: aiosmtpd reads the body one line per `readuntil`, with its checks per line. Here the
  body is taken up to its `CRLF.CRLF` in one read once its first line shows it is not the end,
  dot-unstuffed in one pass; whatever the whole-body read cannot settle alone (a body larger than
  the reader's limit, a line over it) goes on line by line exactly as aiosmtpd does, from where
  the whole-body read stopped, so replies, size limit and stream position stay aiosmtpd's.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import MutableMapping
from typing import Any

import aiosmtpd.smtp
from aiosmtpd.proxy_protocol import get_proxy
from aiosmtpd.smtp import ALLOWED_BEFORE_STARTTLS, BOGUS_LIMIT, MISSING, SMTP, TLSSetupException, _DataState

from gateway import mailheaders as h

_aiosmtpd_log = aiosmtpd.smtp.log  # "mail.log", where aiosmtpd reports a connection lost in DATA
END_OF_DATA = b"\r\n.\r\n"
REPLY_MAX = 510  # characters of one reply line: RFC 5321 4.5.3.1.5's 512 octets with its CR LF

_sanitized_log = aiosmtpd.smtp.sanitized_log

# RFC 2920 3.1: commands whose replies may wait for the rest of a pipelined group.
GROUPABLE = frozenset({"MAIL", "RCPT", "RSET", "NOOP"})


class LeanSMTP(SMTP):
    """aiosmtpd's server with the cheaper per-command steps described in the module doc."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._held: list[bytes] = []  # replies not yet written
        self._groupable = False  # a reply to a command of GROUPABLE is being made
        self._deadline = 0.0  # when the session times out
        self._armed = 0.0  # when the armed timer fires
        super().__init__(*args, **kwargs)
        for name in GROUPABLE:  # aiosmtpd's command loop dispatches through this table
            method = self._smtp_methods.get(name)
            if method is not None:
                self._smtp_methods[name] = self._grouped(method)

    def _grouped(self, method: Any) -> Any:
        @functools.wraps(method)  # keeps aiosmtpd's syntax attributes, which HELP reads
        async def run(arg: str | None) -> None:
            self._groupable = True
            try:
                await method(arg)
            finally:
                self._groupable = False

        return run

    # ---- replies -------------------------------------------------------------------------------

    def _reply_text(self, status: str) -> str:
        """A reply as it goes out; subclasses rewrite it or take note of it, then call this."""
        return status

    async def push(self, status: str | bytes) -> None:
        if isinstance(status, str):
            status = self._reply_text(status)
            # UTF-8 only to a client whose transaction asked for it (RFC 6531 3.7.4): offering
            # SMTPUTF8 is no licence to send it to every client, and a Polish account's name in a
            # limit refusal reached clients that read replies as ASCII (Python's smtplib raised).
            utf8 = self.enable_SMTPUTF8 and self.envelope is not None and self.envelope.smtp_utf8
            if not status.isprintable() or not (status.isascii() or utf8):
                status = h.reply_line(status)  # stored text quoted in it (a name, a reason)
            if len(status) > REPLY_MAX:  # a long reason: clients may cut or misread a longer line
                status = status[: REPLY_MAX - 3] + "..."
            status = status.encode("utf-8" if utf8 else "ascii")
        line = status + b"\r\n"
        if status[3:4] == b"-" or (self._groupable and self._line_waiting()):
            self._held.append(line)
            return
        if self._held:
            self._held.append(line)
            line = b"".join(self._held)
            self._held.clear()
        self._writer.write(line)
        await self._writer.drain()

    # ---- commands ------------------------------------------------------------------------------

    async def _handle_client(self) -> None:
        """aiosmtpd 1.4.6's command loop, the same steps and replies; only its two line-logging calls
        are made solely when its logger takes their records (DEBUG on implies INFO on)."""
        log = _aiosmtpd_log
        assert self.session is not None
        log.info("%r handling connection", self.session.peer)

        if self._proxy_timeout is not None:
            self._reset_timeout(self._proxy_timeout)
            log.debug("%r waiting PROXY handshake", self.session.peer)
            self.session.proxy_data = await get_proxy(self._reader)
            if self.session.proxy_data:
                log.info("%r valid PROXY handshake", self.session.peer)
                status = await self._call_handler_hook("PROXY", self.session.proxy_data)
                log.debug("%r handle_PROXY returned %r", self.session.peer, status)
            else:
                log.warning("%r invalid PROXY handshake", self.session.peer)
                status = False
            if status is MISSING or not status:
                log.info("%r rejected by handle_PROXY", self.session.peer)
                assert self.transport is not None
                self.transport.close()
                return
            self._reset_timeout()

        await self.push(f"220 {self.hostname} {self.__ident__}")
        call_limit: MutableMapping[str, int]
        if self._enforce_call_limit:
            call_limit = collections.defaultdict(lambda: self._call_limit_default, self._call_limit_base)
        else:
            call_limit = {}
        bogus_budget = BOGUS_LIMIT

        while self.transport is not None:
            try:
                try:
                    line: bytes = await self._reader.readuntil()
                except asyncio.LimitOverrunError as error:
                    # Line too long. Read until end of line before sending 500.
                    await self._reader.read(error.consumed)
                    while True:
                        try:
                            await self._reader.readuntil()
                            break
                        except asyncio.LimitOverrunError as e:
                            await self._reader.read(e.consumed)
                            continue
                    await self.push("500 Command line too long")
                    continue
                if log.isEnabledFor(logging.INFO):
                    if log.isEnabledFor(logging.DEBUG):
                        _sanitized_log(log.debug, "_handle_client readline: %r", line)
                    line = line.rstrip(b"\r\n")
                    _sanitized_log(log.info, "%r >> %r", self.session.peer, line)
                else:
                    line = line.rstrip(b"\r\n")
                if not line:
                    await self.push("500 Error: bad syntax")
                    continue
                command_bytes, _, arg_bytes = line.partition(b" ")
                try:
                    command = command_bytes.upper().decode(encoding="ascii")
                except UnicodeDecodeError:
                    await self.push("500 Error: bad syntax")
                    continue
                arg: str | None
                if not arg_bytes:
                    arg = None
                else:
                    arg_bytes = arg_bytes.strip()
                    if self.enable_SMTPUTF8:
                        arg = str(arg_bytes, encoding="utf-8", errors="surrogateescape")
                    else:
                        try:
                            arg = str(arg_bytes, encoding="ascii", errors="strict")
                        except UnicodeDecodeError:
                            await self.push("500 Error: strict ASCII mode")
                            continue
                max_sz = (
                    self.command_size_limits[command]
                    if self.session.extended_smtp
                    else self.command_size_limit
                )
                if len(line) > max_sz:
                    await self.push("500 Command line too long")
                    continue
                if not self._tls_handshake_okay and command != "QUIT":
                    await self.push("554 Command refused due to lack of security")
                    continue
                if (
                    self.require_starttls
                    and not self._tls_protocol
                    and command not in ALLOWED_BEFORE_STARTTLS
                ):
                    await self.push("530 Must issue a STARTTLS command first")
                    continue

                if self._enforce_call_limit:
                    budget = call_limit[command]
                    if budget < 1:
                        log.warning("%r over limit for %s", self.session.peer, command)
                        await self.push(f"421 4.7.0 {command} sent too many times")
                        self.transport.close()
                        continue
                    call_limit[command] = budget - 1

                method = self._smtp_methods.get(command)
                if method is None:
                    log.warning("%r unrecognised: %s", self.session.peer, command)
                    bogus_budget -= 1
                    if bogus_budget < 1:
                        log.warning("%r too many bogus commands", self.session.peer)
                        await self.push("502 5.5.1 Too many unrecognized commands, goodbye.")
                        self.transport.close()
                        continue
                    await self.push(f'500 Error: command "{command}" not recognized')
                    continue

                # Received a valid command, reset the timer.
                self._reset_timeout()
                await method(arg)
            except asyncio.CancelledError:
                log.info("%r Connection lost during _handle_client()", self.session.peer)
                self._writer.close()
                raise
            except ConnectionResetError:
                log.info("%r Connection lost during _handle_client()", self.session.peer)
                self._writer.close()
                raise
            except Exception as error:
                status = None
                try:
                    status = await self.handle_exception(error)
                except Exception as inner_error:
                    try:
                        log.exception("%r Exception in handle_exception()", self.session.peer)
                        status = f"500 Error: ({inner_error.__class__.__name__}) {inner_error!s}"
                    except Exception:
                        status = "500 Error: Cannot describe error"
                finally:
                    if isinstance(error, TLSSetupException):
                        self.transport.close()
                        self.connection_lost(error)
                    else:
                        await self.push(status)  # type: ignore[arg-type]

    # ---- DATA ----------------------------------------------------------------------------------

    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA (same checks, replies and envelope), the body read by `_read_body`."""
        limit = self.data_size_limit
        if not limit or self.line_length_limit < limit or "DATA" not in self._handle_hooks:
            # Without a size limit no line is too long for it, so lines must be looked at one by
            # one; a handler without handle_DATA takes aiosmtpd's older path.
            await super().smtp_DATA(arg)
            return
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            state, pieces = await self._read_body(limit)
        except asyncio.CancelledError:  # the connection went away during DATA
            _aiosmtpd_log.info("Connection lost during DATA")
            self._writer.close()
            raise
        if state is not _DataState.NOMINAL:
            if state is _DataState.TOO_LONG:
                await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            else:
                await self.push("552 Error: Too much mail data")
            self._set_post_data_state()
            return
        original_content = b"".join(pieces)
        content: str | bytes = original_content
        if self._decode_data:
            if self.enable_SMTPUTF8:
                content = original_content.decode("utf-8", errors="surrogateescape")
            else:
                try:
                    content = original_content.decode("ascii", errors="strict")
                except UnicodeDecodeError:
                    await self.push("500 Error: strict ASCII mode")
                    return
        self.envelope.content = content
        self.envelope.original_content = original_content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _read_body(self, limit: int) -> tuple[_DataState, list[bytes]]:
        """The body up to the line ".", dot-unstuffed, in as few reads as the client's writes allow.

        Each step starts at the beginning of a line. While the input is empty or starts with a dot
        (it may be the end), one line is read; otherwise the end is the first CRLF.CRLF, so the rest
        comes in one read. A read the reader's limit refuses consumes nothing, and aiosmtpd's own
        line loop takes over there. The caller made sure that no line within the size limit can be
        longer than aiosmtpd's line limit, so the size is the only check left for whole lines.
        """
        reader = self._reader
        pieces: list[bytes] = []
        size = 0
        while self.transport is not None:  # aiosmtpd's loop condition
            buffered = reader._buffer
            try:
                if not buffered or buffered[0] == 0x2E:  # "."
                    line = await reader.readuntil(b"\r\n")
                    if line == b".\r\n":
                        break
                    size += len(line)
                    pieces.append(line[1:] if line[0] == 0x2E else line)
                    continue
                chunk = await reader.readuntil(END_OF_DATA)
            except asyncio.LimitOverrunError:
                state = _DataState.TOO_MUCH if size > limit else _DataState.NOMINAL
                return await self._read_lines(state, pieces, size, limit)
            body = chunk[:-3]  # the last line's CRLF stays, the "." line goes
            size += len(body)
            pieces.append(body.replace(b"\r\n.", b"\r\n") if b"\r\n." in body else body)
            break
        return (_DataState.TOO_MUCH if size > limit else _DataState.NOMINAL), pieces

    async def _read_lines(
        self, state: _DataState, pieces: list[bytes], size: int, limit: int
    ) -> tuple[_DataState, list[bytes]]:
        """aiosmtpd's DATA line loop (1.4.6), continued from a line start: fragments of over-long
        lines, the states that delay the error reply until the end, dot-unstuffing per line.

        aiosmtpd also gathers the fragments of a line it will not keep, so one endless line costs
        its whole length in memory whatever the size limit. Here only a line that may be kept is
        looked at (one read whole, before anything went wrong); other fragments are counted and
        dropped."""
        reader = self._reader
        if state is not _DataState.NOMINAL:
            pieces.clear()
        at_line_start = True
        while self.transport is not None:
            try:
                line = await reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as e:
                if state is _DataState.NOMINAL:
                    state = _DataState.TOO_LONG
                pieces.clear()
                line = await reader.read(e.consumed)
            if at_line_start and line == b".\r\n":
                break
            size += len(line)
            if state is _DataState.NOMINAL and size > limit:
                state = _DataState.TOO_MUCH
                pieces.clear()
            at_line_start = line.endswith(b"\r\n")
            if state is _DataState.NOMINAL:  # so `line` is a whole line: readuntil found its end
                if len(line) > self.line_length_limit:
                    state = _DataState.TOO_LONG
                    pieces.clear()
                else:
                    pieces.append(line[1:] if line[:1] == b"." else line)
        return state, pieces

    def _line_waiting(self) -> bool:
        """Whether a whole command line is already in the input (the client did not wait for us)."""
        reader = getattr(self, "_reader", None)
        return reader is not None and b"\n" in reader._buffer

    def take_held(self) -> bytes:
        """The replies held so far, for a caller that writes straight to the transport."""
        held = b"".join(self._held)
        self._held.clear()
        return held

    # ---- idle time -----------------------------------------------------------------------------

    def _reset_timeout(self, duration: float | None = None) -> None:
        now = self.loop.time()
        self._deadline = now + (duration or self._timeout_duration)
        handle = self._timeout_handle
        if handle is not None and not handle.cancelled() and self._armed <= self._deadline:
            return  # the armed timer fires first and then waits for the rest
        if handle is not None:
            handle.cancel()
        self._armed = self._deadline
        self._timeout_handle = self.loop.call_at(self._armed, self._timer_fired)

    def _timer_fired(self) -> None:
        if self.loop.time() < self._deadline:
            self._armed = self._deadline
            self._timeout_handle = self.loop.call_at(self._armed, self._timer_fired)
            return
        self._timeout_cb()
