"""aiosmtpd's protocol with less work per command line, and replies of a pipelined group in one write.

Each mail costs at least four commands and replies, and the daemon's event loop is its bottleneck,
so the per-line overheads of aiosmtpd that buy nothing here are cut:
- Idle timeout: aiosmtpd cancels and creates a timer on every command. Here the deadline moves
  and the one armed timer, when it fires early, re-arms itself for the rest.
- Line logging: aiosmtpd runs every command line through a password-masking regex twice for its
  DEBUG and INFO records, which the root logger (WARNING) then drops; the masking is now skipped
  when the record would be dropped anyway.
- Replies (RFC 2920 PIPELINING): a client that pipelines sends MAIL, RCPT… and DATA in one write.
  The replies to MAIL, RCPT, RSET and NOOP are held while more whole command lines wait in the
  input, and go out with the next reply that is not held, in one write instead of one each
  (continuation lines of a multi-line reply likewise). A reply is never held once the input has
  no whole line left, so a client that waits for it always gets it; the order is the commands'.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import aiosmtpd.smtp
from aiosmtpd.smtp import SMTP

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

    async def push(self, status: str | bytes) -> None:
        if isinstance(status, str):
            status = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
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
