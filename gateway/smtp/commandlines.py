"""The command lines of an SMTP session, counted as they arrive (`guard.GuardedSMTP.data_received`).

Apart from the guard because it is the one place that reads the input's lines before aiosmtpd does,
and so must know which of them are commands at all. A client that sends its whole session in one
write (`printf ... | nc`) puts a mail's body right after its DATA, before the server's 354: those
lines are the body, not commands. Counted as commands, a 300-line body closed the session with
`421 Too many commands without a mail` and its mail was lost. Which they are is known only once the
DATA is answered, so they are held apart per DATA line (`_Ahead`) until then: its 354 makes them a
body; a refusal makes them commands after all, since aiosmtpd then reads them as such (a flood of
NOOPs after a DATA that is never run must not get past the count).

The same goes for a line's length: a 20,000-octet line of a script's mail closed the session as a
command line too long (`421`: the client tried again into the same refusal). A held body line is not
bounded here at all: DATA reads it, and one over the size limit is a mail over the size limit, `552`
as in any other session (a close here was a `421`, and the client's retry met it again). Memory stays
bounded meanwhile, as the reader pauses the transport past twice its line limit. Should the DATA be
refused, the lines become commands and one over the command cap closes the session.

The count's limits close a session the same way: at the line that takes it past one (`over_at`, or
`over_held` among a refused DATA's held lines), once the commands before that line are answered.
A client that pipelined its last commands before the limit with those past it heard only the `421`.

A held body's "." line begins the count again for the lines after it, as its mail's `250` does in the
session; should the mail not be taken, they count on from its DATA line (`data_refused`), a refused
DATA's held lines first. Counted on at receipt, mails written whole in one write heard the `421` as if
none had been taken, and the lines after a refused DATA's "." came before its held lines.

Lines are told as the reader tells them, or a body's line read as a command closes its session: a
body ends at a "." line after a CR LF only (a bare LF before it is a line end to no one but the
client), and a DATA line is whatever aiosmtpd runs as one, "DATA" and any blanks after a space.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from gateway.smtp.linelimits import COMMAND_LINE
from gateway.smtp.sessionlimits import COMMAND_LINE_CAP, RCPT_LINES_CAP

# Octets kept of a line not yet ended: "RCPT", ".\r\n", and a DATA line with up to 512 octets of blanks
# after it (aiosmtpd runs "DATA" followed by any blanks as DATA).
_HEAD = COMMAND_LINE + 80
# Octets of the longest command line with its CR LF: aiosmtpd takes an AUTH line of COMMAND_LINE_CAP
# octets before them (and its reader one of COMMAND_LINE_CAP + 2 in all).
_LONGEST = COMMAND_LINE_CAP + 2
_R, _D = frozenset(b"Rr"), frozenset(b"Dd")  # the first octets of "RCPT" and "DATA"


@dataclass(slots=True)
class _Ahead:
    """A DATA line not yet run, and the lines after it up to its body's end (as far as they came)."""

    at: int  # the input's offset just past the DATA line
    before: int = 0  # `lines` with the DATA line: where its held lines, read as commands, count from
    rcpts: int = 0  # `rcpts` then
    lines: int = 0
    long: bool = False  # one of the lines is over COMMAND_LINE_CAP: as commands, they close the session
    ended: bool = False  # its "." line came: the count after it began again, as after a mail taken


@dataclass(slots=True)
class CommandLines:
    """One session's count; the guard closes the session when `lines` or `rcpts` passes its limit, or
    when `overlong` (held body lines over the command cap turned out to be commands)."""

    max_lines: int = 250  # the limits of `lines` and `rcpts`, for telling where a piece passes one
    max_rcpts: int = RCPT_LINES_CAP
    # Command lines since the session began or its last mail transaction, but RCPTs; a held body's "."
    # line begins them again, as its mail's 250 will (`data_refused` adds them back if it does not).
    lines: int = 0
    rcpts: int = 0  # RCPT lines since then
    _partial: int = 0  # octets of the line not yet ended
    _head: bytes = b""  # its first octets
    _cr: bool = False  # its last octet so far is a CR
    _crlf: bool = False  # the held body's last line ended with CR LF (or none yet): a "." line may end it
    _fed: int = 0  # octets of input so far, handed to aiosmtpd's reader
    _ahead: deque[_Ahead] = field(default_factory=deque)
    _body: bool = False  # the lines now arriving are the body of the last DATA of `_ahead`
    overlong: bool = False
    # Where the line over the cap that `feed` refused begins, in octets from the start of the piece it
    # was given (negative: in the octets the reader holds); None when it refused for `overlong`.
    refused_at: int | None = None
    # Where the line that took `lines` or `rcpts` past its limit begins, as `refused_at` (set by `feed`);
    # or, when a refused DATA's held lines did (`data_refused`), how many of them come before it.
    over_at: int | None = None
    over_held: int | None = None
    over_plain: int = 0  # of the lines the reader holds, how many are a refused DATA's: RCPTs count there

    def passed(self, data: bytes) -> None:
        """Input handed to the reader unread here (inside DATA): the offsets stay the reader's."""
        self._fed += len(data)

    def feed(self, data: bytes, buffered: int, *, bodies: bool = True) -> bool:
        """Count the lines `data` ends; False when a command line is over COMMAND_LINE_CAP, or
        `overlong`. `buffered`: the octets aiosmtpd's reader holds
        yet, which tells the DATA lines it took without running DATA. `bodies`: whether a DATA may be
        run at all (not before a required STARTTLS: aiosmtpd answers 530 without running it, so what
        follows is commands).

        Called for every piece of input outside DATA, mostly one short command: the line ends are
        found with `find` on the piece itself, a command's first octets are looked at only where it
        may be a RCPT or a DATA, and a held body's lines are counted a run at a time up to its `.`."""
        self.over_at = None
        if self._ahead:
            self.settle(buffered)
            if self.over_held is not None:  # in lines the reader took as commands: what it holds goes
                self.over_at, self.over_held = -buffered, None
        if self.overlong:
            self.refused_at = None
            return False
        base, size = self._fed, len(data)
        self._fed = base + size
        if self._partial or self._body or data.find(b"\n") != size - 1:
            return self._lines(data, base, bodies)
        # One whole command line, the usual piece: the loop's step for it, without the loop.
        if size > _LONGEST:
            self.refused_at = 0
            return False
        first = data[0]
        if first in _R and data[:4].upper() == b"RCPT":
            self.rcpts += 1
            if self.rcpts > self.max_rcpts:
                self._past(0)
            return True
        self.lines += 1
        if self.lines > self.max_lines:
            self._past(0)
        if bodies and first in _D and _is_data(data):
            self._held(base + size)
        return True

    def _lines(self, data: bytes, base: int, bodies: bool) -> bool:
        """`feed` for any other piece: several lines, a line begun before, a held body."""
        start, size = 0, len(data)
        if self._partial:  # the first line began in an earlier piece
            end = data.find(b"\n")
            if end < 0:
                return self._unended(data, 0)
            head = (self._head + data[: min(end + 1, _HEAD)])[:_HEAD]
            length = self._partial + end + 1
            crlf = data[end - 1] == 0x0D if end else self._cr
            self._partial, self._head = 0, b""
            if not self._line(head, length, crlf, base + end + 1, bodies):
                self.refused_at = end + 1 - length
                return False
            self._past(end + 1 - length)
            start = end + 1
        while start < size:
            if self._body:
                stop = self._body_lines(data, start)
                if stop == start:
                    break
                start = stop
                continue
            end = data.find(b"\n", start)
            if end < 0:
                break
            length = end + 1 - start
            if length > _LONGEST:
                self.refused_at = start
                return False
            first = data[start]
            if first in _R and data[start : start + 4].upper() == b"RCPT":
                self.rcpts += 1
                if self.rcpts > self.max_rcpts:
                    self._past(start)
            else:
                self.lines += 1
                if self.lines > self.max_lines:
                    self._past(start)
                if bodies and first in _D and _is_data(data[start : end + 1]):
                    self._held(base + end + 1)
            start = end + 1
        # Past the last line end nothing is left unended (the first line's partial was taken above).
        return self._unended(data, start) if start < size else True

    def _line(self, head: bytes, length: int, crlf: bool, at: int, bodies: bool) -> bool:
        """One line of `length` octets (its end included, CR LF if `crlf`) ending at input offset
        `at`, `head` its first octets: the old way, for the line a piece ends that an earlier one began."""
        if self._body:
            held = self._ahead[-1]
            held.lines += 1
            held.long = held.long or length > _LONGEST
            if self._crlf and length == 3 and head[:3] == b".\r\n":
                self._ended()
            self._crlf = crlf
        elif length > _LONGEST:
            return False
        elif head[:4].upper() == b"RCPT":
            self.rcpts += 1
        else:
            self.lines += 1
            if bodies and length <= _HEAD and _is_data(head):
                self._held(at)
        return True

    def _past(self, at: int) -> None:
        """The line beginning `at` octets into the piece took a count past its limit, if nothing in
        the piece did before it."""
        if self.over_at is None and (self.lines > self.max_lines or self.rcpts > self.max_rcpts):
            self.over_at = at

    def _held(self, at: int) -> None:
        """A DATA line ends at input offset `at`: the lines after it are held as its body."""
        self._ahead.append(_Ahead(at, self.lines, self.rcpts))
        self._body = self._crlf = True

    def _ended(self) -> None:
        """The held body's "." line: the lines after it count from none, as once its mail is taken
        the session's do. Counted on from its DATA line, six mails written whole in one write heard
        `421 Too many commands` at the fifth, as if none had been taken."""
        self._ahead[-1].ended, self._body = True, False
        self.lines = self.rcpts = 0

    def _body_lines(self, data: bytes, start: int) -> int:
        """The held body's lines from `start` (a line's start) to its `.` line or to the last line
        `data` ends; returns the offset past them (`start` when no line ends). The lines are counted,
        not walked, unless the run is long enough to hold a line over the command cap."""
        if self._crlf and data.startswith(b".\r\n", start):
            stop, ended = start + 3, True
        else:
            stop = data.find(b"\r\n.\r\n", start) + 5  # past the "." line
            ended = stop > 4
            if not ended:
                stop = data.rfind(b"\n", start) + 1
                if not stop:
                    return start
                self._crlf = stop - start >= 2 and data[stop - 2] == 0x0D
        held = self._ahead[-1]
        held.lines += data.count(b"\n", start, stop)
        if stop - start > _LONGEST and not held.long:
            held.long = _has_long_line(data, start, stop)
        if ended:
            self._ended()
        return stop

    def _unended(self, data: bytes, start: int) -> bool:
        """The line `data` leaves unended from `start`: its first octets kept, its length counted."""
        if len(self._head) < _HEAD:
            self._head = (self._head + data[start : start + _HEAD])[:_HEAD]
        self._partial += len(data) - start
        self._cr = data[-1] == 0x0D
        if self._within():
            return True
        self.refused_at = len(data) - self._partial
        return False

    def _within(self) -> bool:
        if not self._body:
            return self._partial < _LONGEST  # its LF yet to come
        held = self._ahead[-1]  # the line not yet ended is its body's
        held.long = held.long or self._partial >= _LONGEST
        return True

    def settle(self, buffered: int) -> None:
        """DATA lines the reader took that no DATA command ran for (refused before it, as `530` before
        STARTTLS): the lines after them were read as commands, and count so."""
        taken = self._fed - buffered
        while self._ahead and self._ahead[0].at <= taken:
            self.data_refused(self._ahead.popleft())
            self._body = self._body and bool(self._ahead)

    def data_run(self, buffered: int) -> _Ahead | None:
        """At the start of a DATA command: the lines held after its line, now the reader's to read."""
        taken = self._fed - buffered  # just past its own line
        self.settle(buffered + 1)
        self.over_held = None  # not the lines after this DATA: the guard places its limit later
        if not self._ahead or self._ahead[0].at != taken:
            return None  # a DATA line not told as one here (its lines were counted as commands)
        held = self._ahead.popleft()
        self._body = self._body and bool(self._ahead)
        return held

    def data_refused(self, held: _Ahead | None, *, read: bool = False) -> None:
        """A DATA answered with no 354 (aiosmtpd reads the lines after it as commands), or, `read`,
        a mail not taken: the count goes on from its DATA line over the lines after it, as the
        session's does. Where that takes it past a limit, `over_held` is how many lines the reader
        holds before the one that does."""
        if held is None or (read and not held.ended):
            return  # (a body not held to its end: the count was never begun again)
        if read:  # its lines were its body: the reader holds the lines after its "." first
            held.lines, held.long = 0, False
        lines, rcpts = held.before + held.lines, held.rcpts
        self.overlong = self.overlong or held.long
        if not held.ended:  # the lines after it are all held: the count is still the DATA line's
            self.lines = lines
            self._place(held, lines)
            return
        # The lines up to the next DATA line held (or all since, without one) count on from it.
        after = self._ahead[0] if self._ahead else None
        if after is not None:
            after.before, after.rcpts = after.before + lines, after.rcpts + rcpts
        if after is None or not after.ended:  # `lines` is still the count of those lines
            self.lines, self.rcpts = self.lines + lines, self.rcpts + rcpts
        total, rcpts = (self.lines, self.rcpts) if after is None else (after.before, after.rcpts)
        self._place(held, total)
        if rcpts > self.max_rcpts and self.over_held is None:  # (its line is not placed: at once)
            self.over_held = 0

    def _place(self, held: _Ahead, total: int) -> None:
        """The count from `held`'s DATA line over the lines after it, `total` at most, passes its limit."""
        if held.before <= self.max_lines < total and self.over_held is None:
            self.over_held, self.over_plain = self.max_lines - held.before, held.lines

    def taken(self, held: _Ahead | None) -> None:
        """A mail taken: the count begins again past its "." line (already, for a body held to it)."""
        if held is None or not held.ended:
            self.reset()

    def past(self) -> bool:
        """Whether a limit is passed (or placed past), and the session is to close."""
        return (
            self.lines > self.max_lines
            or self.rcpts > self.max_rcpts
            or self.over_at is not None
            or self.over_held is not None
        )

    def restart(self) -> None:
        """After STARTTLS the reader drops what it held (RFC 3207 4.2): so do the held lines."""
        self._ahead.clear()
        self._body = False

    def reset(self) -> None:
        self.lines = self.rcpts = 0
        self.over_at = self.over_held = None


def _is_data(line: bytes) -> bool:
    """Whether aiosmtpd runs `line` (its end included) as DATA: "DATA" alone or with blanks after a
    space, in any case, before any CRs and LF, within the command line limit."""
    text = line.rstrip(b"\r\n")
    return (
        len(text) <= COMMAND_LINE
        and text[:4].upper() == b"DATA"
        and (len(text) == 4 or (text[4] == 0x20 and not text[5:].strip()))
    )


def _has_long_line(data: bytes, start: int, stop: int) -> bool:
    """Whether a line of data[start:stop] (whole lines) is over the command cap."""
    while start < stop:
        end = data.find(b"\n", start, stop)
        if end + 1 - start > _LONGEST:
            return True
        start = end + 1
    return False
