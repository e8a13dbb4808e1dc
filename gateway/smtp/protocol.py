"""aiosmtpd's protocol with less work per command line, and replies of a pipelined group in one write.

Each mail costs at least four commands and replies, and the daemon's event loop is its bottleneck,
so the per-line overheads of aiosmtpd that buy nothing here are cut:
- Idle timeout: aiosmtpd cancels and creates a timer on every command. Here the deadline moves
  and the one armed timer, when it fires early, re-arms itself for the rest.
- Line logging: aiosmtpd runs every command line through a password-masking regex twice for its
  DEBUG and INFO records, which the root logger (WARNING) then drops; the masking is now skipped
  when the record would be dropped anyway.
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
- The client's half-close (`nc -N`, shutdown(SHUT_WR) after QUIT): aiosmtpd cancels the session at
  the EOF, so a mail already taken was never answered (see `eof_received`). Here what came before
  the EOF is run and answered, and the session ends at the first read the input cannot satisfy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiosmtpd.smtp
import structlog
from aiosmtpd.smtp import MISSING, SMTP, _DataState

from gateway import mailheaders as h
from gateway.smtp import replies, sessioninit
from smsc.logthrottle import LogThrottle

log = structlog.get_logger(__name__)

_aiosmtpd_log = aiosmtpd.smtp.log  # "mail.log", where aiosmtpd reports a connection lost in DATA
END_OF_DATA = b"\r\n.\r\n"
REPLY_MAX = 510  # characters of one reply line: RFC 5321 4.5.3.1.5's 512 octets with its CR LF

# A client that ends its lines with LF alone never ends its body: its "." line is no end of data, which
# is CR LF . CR LF only (RFC 5321 4.1.1.4; a bare LF's "." read as one lets a mail smuggle another past
# the next hop, so it is waited past, as Postfix does). It waited for our answer till the idle time; the
# 421 then says why, and a line a second at most says it in the log (any client can send such bodies).
BARE_LF_END = (
    'the client ended a "." line, or the line before it, with LF alone, which does not end the data;'
    " the mail was not taken"
)
_bare_lf_end = LogThrottle(log, 1.0, time.monotonic)
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_aiosmtpd_sanitized_log = aiosmtpd.smtp.sanitized_log


def _sanitized_log(func: Any, msg: Any, *args: Any, **kwargs: Any) -> None:
    """aiosmtpd's `sanitized_log`, skipped when its logger would drop the record."""
    logger = getattr(func, "__self__", None)
    level = _LEVELS.get(getattr(func, "__name__", ""))
    if isinstance(logger, logging.Logger) and level is not None and not logger.isEnabledFor(level):
        return
    _aiosmtpd_sanitized_log(func, msg, *args, **kwargs)


aiosmtpd.smtp.sanitized_log = _sanitized_log  # the name aiosmtpd's command loop looks up per line

# RFC 2920 3.1: commands whose replies may wait for the rest of a pipelined group.
GROUPABLE = frozenset({"MAIL", "RCPT", "RSET", "NOOP"})


def _lf_dot_line(data: bytes | bytearray) -> bool:
    """Whether `data`, from a line's start, holds a line "." that a bare LF ends, or one a bare LF
    starts (`hello\\n.\\r\\n`: the client's end of data after a line it ended with LF alone)."""
    if data[:2] == b".\n" or data.find(b"\n.\n") >= 0:
        return True
    at = data.find(b"\n.\r\n")
    while at >= 0:
        if at == 0 or data[at - 1] != 0x0D:  # "\r": CR LF . CR LF is the end of data itself
            return True
        at = data.find(b"\n.\r\n", at + 1)
    return False


def _unstuffed(line: bytes) -> bytes:
    """A body line without the dot its client doubled (RFC 5321 4.5.2), also on the lines that a
    bare LF ends within it: Python's smtplib stuffs after every LF of a `msg.as_bytes()` (whose lines
    end so), and Postfix and Exim read those lines as lines; a quoted-printable Polish text put its
    doubled dots in the SMS ("piątek.."). Only the end of data stays CRLF.CRLF (no smuggling)."""
    if line[:1] == b".":
        line = line[1:]
    # `find`, not `in`: bytes' `in` first tries its operand as an int and formats a TypeError for
    # the bytes it is given (about 1 k instructions more a test, several a mail).
    return line.replace(b"\n.", b"\n") if line.find(b"\n.") >= 0 else line


class LeanSMTP(SMTP):
    """aiosmtpd's server with the cheaper per-command steps described in the module doc."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._held: list[bytes] = []  # replies not yet written
        self._groupable = False  # a reply to a command of GROUPABLE is being made
        self._deadline = 0.0  # when the session times out
        self._armed = 0.0  # when the armed timer fires
        self._input_over = False  # the client half-closed and all it sent was read: ending
        self._input_dropped = False  # the session closed its channel: nothing more is read (`drop_input`)
        self._in_body = False  # from DATA's 354 to the end of its body (`idle_reply`)
        self._lf_dot = False  # a body line read held a "." line that a bare LF ended (`idle_reply`)
        sessioninit.init(self, *args, **kwargs)  # aiosmtpd's __init__, its tables found once per class
        for name in GROUPABLE:  # aiosmtpd's command loop dispatches through this table
            method = self._smtp_methods.get(name)
            if method is not None:
                self._smtp_methods[name] = self._grouped(method)

    def _grouped(self, method: Any) -> Any:
        async def run(arg: str | None) -> None:
            self._groupable = True
            try:
                await method(arg)
            finally:
                self._groupable = False

        return sessioninit.wrapped(run, method)  # keeps aiosmtpd's syntax attributes, which HELP reads

    # ---- replies -------------------------------------------------------------------------------

    def _reply_text(self, status: str) -> str:
        """A reply as it goes out; subclasses rewrite it or take note of it, then call this."""
        return status

    async def push(self, status: str | bytes) -> None:
        if self._input_over:
            await asyncio.sleep(0)  # the session's cancellation, which `handle_exception` asked for
            return
        transport = self.transport
        if transport is not None and transport.is_closing():
            # Closed (a 421, a lockout, an eviction): a write to a closed TLS channel raised
            # AttributeError, logged as an internal error. The client's lines behind are not run.
            self._held.clear()
            self.drop_input()
            return
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
        writer = self._writer
        writer.write(line)
        # `drain` does something only when the transport is closing (a failed write closes it), the
        # reader holds an error, or this protocol (the writer's: a TLS transport writes through it
        # too) lost its connection or was paused by a full write buffer: only then is it awaited.
        # Its two coroutines cost some 3 k instructions a reply, four replies a mail.
        quiet = not (self._paused or self._connection_lost) and self._reader._exception is None
        if not quiet or transport is None or transport.is_closing():
            await writer.drain()

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
        self._in_body, self._lf_dot = True, False
        try:
            state, pieces = await self._read_body(limit)
        except asyncio.CancelledError:  # the connection went away during DATA
            _aiosmtpd_log.info("Connection lost during DATA")
            self._writer.close()
            raise
        finally:
            self._in_body = False
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
                    self._lf_dot = self._lf_dot or _lf_dot_line(line)
                    size += len(line)
                    pieces.append(_unstuffed(line))
                    continue
                chunk = await reader.readuntil(END_OF_DATA)
            except asyncio.LimitOverrunError:
                state = _DataState.TOO_MUCH if size > limit else _DataState.NOMINAL
                return await self._read_lines(state, pieces, size, limit)
            body = chunk[:-3]  # the last line's CRLF stays, the "." line goes
            size += len(body)
            pieces.append(body.replace(b"\n.", b"\n") if body.find(b"\n.") >= 0 else body)  # see _unstuffed
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
            self._lf_dot = self._lf_dot or (at_line_start and _lf_dot_line(line))
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
                    pieces.append(_unstuffed(line))
        return state, pieces

    def idle_reply(self) -> str:
        """The 421 at the end of the idle time; in a body with a "." line a bare LF ended (read, or
        waiting in the input from a line's start), one that says so, and a line in the log."""
        if not self._in_body or not (self._lf_dot or _lf_dot_line(self._reader._buffer)):
            return replies.IDLE_TIMEOUT
        peer = self.session.peer if self.session is not None else None
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else None
        _bare_lf_end.warning("smtp.bare_lf_end_of_data", ip=ip, note=BARE_LF_END)
        return replies.IDLE_BARE_LF_END

    def _line_waiting(self) -> bool:
        """Whether a whole command line is already in the input (the client did not wait for us)."""
        reader = getattr(self, "_reader", None)
        return reader is not None and reader._buffer.find(b"\n") >= 0  # not `in`: see _unstuffed

    def drop_input(self) -> None:
        """The session closed its channel: the lines the client wrote behind, read or still coming, are
        neither run nor answered (a guess at another login behind a lockout's 421 was checked and
        counted). The command loop's next read meets the input's end and the session ends there
        (`handle_exception`), as after a half-close."""
        self._input_dropped = True
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader._buffer.clear()
            reader.feed_eof()

    def take_held(self) -> bytes:
        """The replies held so far, for a caller that writes straight to the transport."""
        held = b"".join(self._held)
        self._held.clear()
        return held

    # ---- the client's half-close ---------------------------------------------------------------

    def eof_received(self) -> bool | None:
        """A client that writes its session and half-closes still reads the replies. aiosmtpd cancelled
        the session at the EOF: the mail before it was taken and its SMS sent, but neither its 250 nor
        QUIT's 221 was written, and the client, seeing no 250, sent the mail again (RFC 5321 6.1): two
        SMS. Now the reader takes the EOF, the lines before it are run and answered, and the first
        read they leave unsatisfied ends the session (`handle_exception`): at once for an idle
        connection, and a body without its end of data is stored nowhere. Over TLS there is no
        half-close (asyncio closes the transport), so aiosmtpd's way stays there."""
        task = self._handler_coroutine
        if self.session is None or self.session.ssl is not None or task is None or task.done():
            return super().eof_received()
        _aiosmtpd_log.info("%r EOF received", self.session.peer)
        return asyncio.StreamReaderProtocol.eof_received(self)  # feeds the reader its EOF; keeps writing

    async def handle_exception(self, error: Exception) -> str:
        if not isinstance(error, asyncio.IncompleteReadError):
            return await super().handle_exception(error)
        # A read met the client's EOF: everything it sent is answered, so the session ends as after
        # QUIT. aiosmtpd's loop pushes whatever this returns; `push` writes nothing once ending.
        # The error holds what the read had (an unfinished body) and, in its traceback, the frames
        # that held its pieces; the ended task keeps it until Python's rare full collection.
        error.partial = b""
        error.__traceback__ = None
        self._input_over = True
        assert self._handler_coroutine is not None
        self._handler_coroutine.cancel()
        if self.transport is not None and not self.transport.is_closing():  # closing: see `push`
            self.transport.write(self.take_held())
            self.transport.close()
        return ""

    def _timeout_cb(self) -> None:
        if self.transport is not None and self.transport.is_closing():
            # A close still waiting to write replies to a client that reads nothing (one that half-
            # closed and walked away): it would hold the descriptor for ever; the idle time ends it.
            self.transport.abort()
            return
        super()._timeout_cb()  # closes, once what is written is read
        if self.transport is not None:  # not lost yet: the timer, fired, is armed once more
            self._deadline = self._armed = self.loop.time() + self._timeout_duration
            self._timeout_handle = self.loop.call_at(self._armed, self._timer_fired)

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
