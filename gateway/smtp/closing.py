"""How a session closes with a reply of its own (`guard.GuardedSMTP`'s limits, a stop, an eviction): at
once, or once the input before a command line over the cap is read and answered.

Apart from the guard because it is how a session ends, not which limit bit. The guard sees a line over
the cap as its bytes arrive, before aiosmtpd's reader has seen anything the same write held before it.
Closing there at once dropped all of that unanswered: a client that wrote its EHLO and the line heard
only the `421`, and a mail written whole before the line was neither answered nor taken, its client
unable to tell whether it went. Now the reader keeps its input up to the line's start and meets the
input's end there, as after a client's half-close (`protocol.LeanSMTP.eof_received`): the commands
before the line are run and answered in order (a mail before it is taken and hears its `250`), and the
first read past them ends the session with the `421`. The line, and anything after it, is never read.

A count's limit (`max_commands_without_mail`, the RCPTs' cap) ends the input the same way, at the line
that takes the count past it (`end_input_past_count`): a client that wrote the last commands within
the limit and some past it in one write heard the `421` alone, those within it unanswered.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.smtp.commandlines import CommandLines
from gateway.smtp.protocol import LeanSMTP
from gateway.smtp.sessionlimits import COMMAND_LINE_CAP

_LONGEST = COMMAND_LINE_CAP + 2  # octets of the longest command line with its CR LF


class ClosingSMTP(LeanSMTP):
    """aiosmtpd's server that closes with a reply: at once, or once the input before a point is read."""

    def wants_implicit_tls(self) -> None:
        """A TLS handshake came where commands are read (`GuardedSMTP.data_received`): the client was
        set to implicit TLS. The gateway's servers log it; the look costs no call at every read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._last_reply: str | None = None  # written once the input, ended early, is all read
        super().__init__(*args, **kwargs)

    @property
    def input_ended(self) -> bool:
        """Whether the input was ended early: what arrives from now on is not read."""
        return self._last_reply is not None or self._input_dropped

    def end_input(self, data: bytes, at: int | None, reply: str) -> None:
        """End the reader's input `at` octets into `data`, a piece it was not given (negative: within
        what it holds), or with None at the first line over the cap that it holds; `reply` closes
        the session once the reader has read up to there."""
        reader = self._reader
        buffer: bytearray = reader._buffer  # type: ignore[attr-defined]
        if at is None:
            keep = first_long_line(buffer)
        else:
            keep = len(buffer) + at
            if at > 0:
                reader.feed_data(data[:at])
        del buffer[keep:]
        self._last_reply = reply
        reader.feed_eof()

    def end_input_past_count(self, data: bytes, count: CommandLines, reply: str) -> bool:
        """End the input at the line that took `count` past a limit: in `data`, a piece not yet given
        to the reader, or among a refused DATA's lines that the reader now holds first. Where no line
        was placed (the count passed its limit as lines were read out of their order), at what the
        reader holds; not again once ended so. False when the input was ended already."""
        at, held = count.over_at, count.over_held
        count.over_at = count.over_held = None
        buffer: bytearray = self._reader._buffer  # type: ignore[attr-defined]
        if held is not None:
            at = line_start(buffer, held, count.over_plain) - len(buffer)
        elif self.input_ended:
            return False
        elif at is None:
            at = -len(buffer)
        self.end_input(data, at, reply)
        return True

    def say_and_close(self, reply: str) -> None:
        """The replies held for a pipelined group, then `reply`, and the channel closed: from outside
        the session's task (a transport callback, a timer, the daemon's stop), unless already closing."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.take_held() + reply.encode("ascii") + b"\r\n")
            self.transport.close()

    async def handle_exception(self, error: Exception) -> str:
        if self._last_reply is not None and isinstance(error, asyncio.IncompleteReadError):
            # The ended input is read: the reply goes out after those held for the lines before it.
            self._held.append(self._last_reply.encode("ascii") + b"\r\n")
        return await super().handle_exception(error)


def first_long_line(buffer: bytes | bytearray) -> int:
    """Where the first line of `buffer` over the command cap begins (one left unended counts once it
    reaches the cap, as `commandlines.CommandLines` counts it); the buffer's length if none is."""
    start, size = 0, len(buffer)
    while start < size:
        end = buffer.find(b"\n", start)
        if end < 0:
            return start if size - start >= _LONGEST else size
        if end + 1 - start > _LONGEST:
            return start
        start = end + 1
    return size


def line_start(buffer: bytes | bytearray, lines: int, plain: int | None = None) -> int:
    """Where the line after the first `lines` lines of `buffer` begins; its length if it holds fewer.
    Past its first `plain` lines (a refused DATA's, commands now whatever they are), RCPT lines are not
    among them, as `commandlines.CommandLines` counts them apart; with None, every line is."""
    start = index = 0
    while True:
        counted = plain is None or index < plain or buffer[start : start + 4].upper() != b"RCPT"
        if counted and not lines:
            return start
        end = buffer.find(b"\n", start)
        if end < 0:
            return len(buffer)
        lines -= counted
        index, start = index + 1, end + 1
