"""`commandlines.CommandLines` against the plain line-by-line count it replaced, on every way a
session's input may be cut into pieces.

The count finds its line ends over a whole piece, takes a one-line piece without its loop and counts
a held body's lines a run at a time; the reference below is the walk it replaced, line by line with
each line's first octets sliced out. Both must agree on everything the guard reads (and on the state
they carry to the next piece) for input cut at every octet, at random, and whole: command floods,
bodies written before the 354, a "." line split across pieces, lines at and over the command cap.
The reference tells lines as aiosmtpd does: a body ends at a "." line after a CR LF only, a DATA line
is what aiosmtpd's command loop runs as one, and the cap is on a line without its CR LF.
The sessions through the real listener are in tests/test_smtp_client_scripts.py.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import pytest

from gateway.smtp.commandlines import CommandLines
from gateway.smtp.sessionlimits import COMMAND_LINE_CAP

_HEAD = 512 + 80  # a DATA line and its blanks, as aiosmtpd's command limit allows them


def is_data(line: bytes) -> bool:
    """aiosmtpd's command loop: the line without its CRs and LFs, split at its first space."""
    text = line.rstrip(b"\r\n")
    command, _, arg = text.partition(b" ")
    return len(text) <= 512 and command.upper() == b"DATA" and not arg.strip()


@dataclass(slots=True)
class _RefAhead:
    at: int
    before: int = 0
    rcpts: int = 0
    lines: int = 0
    long: bool = False
    ended: bool = False


@dataclass(slots=True)
class Reference:
    """The count as 0.2.23 kept it: each line walked and sliced in Python."""

    lines: int = 0
    rcpts: int = 0
    _partial: int = 0
    _head: bytes = b""
    _cr: bool = False
    _crlf: bool = False
    _fed: int = 0
    _ahead: deque[_RefAhead] = field(default_factory=deque)
    _body: bool = False
    overlong: bool = False

    def passed(self, data: bytes) -> None:
        self._fed += len(data)

    def feed(self, data: bytes, buffered: int, *, bodies: bool = True) -> bool:
        self.settle(buffered)
        if self.overlong:
            return False
        base, start = self._fed, 0
        self._fed += len(data)
        while (end := data.find(b"\n", start)) >= 0:
            length = self._partial + end + 1 - start
            if length - 2 > COMMAND_LINE_CAP and not self._body:
                return False
            piece = data[start : min(end + 1, start + _HEAD)]
            head = (self._head + piece)[:_HEAD] if self._head else piece
            if end > start:
                crlf = data[end - 1] == 0x0D
            else:
                crlf = bool(self._partial) and self._cr
            if self._body:
                held = self._ahead[-1]
                held.lines += 1
                held.long = held.long or length - 2 > COMMAND_LINE_CAP
                if self._crlf and length == 3 and head[:3] == b".\r\n":  # as if its mail were taken
                    held.ended, self._body = True, False
                    self.lines = self.rcpts = 0
                self._crlf = crlf
            elif head[:4].upper() == b"RCPT":
                self.rcpts += 1
            else:
                self.lines += 1
                if bodies and length <= _HEAD and is_data(head):
                    self._ahead.append(_RefAhead(base + end + 1, self.lines, self.rcpts))
                    self._body = self._crlf = True
            self._partial, self._head = 0, b""
            start = end + 1
        if start < len(data):
            self._head = (self._head + data[start : start + _HEAD])[:_HEAD]
            self._cr = data[-1] == 0x0D
        self._partial += len(data) - start
        if not self._body:
            return self._partial - 1 <= COMMAND_LINE_CAP
        held = self._ahead[-1]
        held.long = held.long or self._partial - 1 > COMMAND_LINE_CAP
        return True

    def settle(self, buffered: int) -> None:
        taken = self._fed - buffered
        while self._ahead and self._ahead[0].at <= taken:
            self.data_refused(self._ahead.popleft())
            self._body = self._body and bool(self._ahead)

    def data_run(self, buffered: int) -> _RefAhead | None:
        taken = self._fed - buffered
        self.settle(buffered + 1)
        if not self._ahead or self._ahead[0].at != taken:
            return None
        held = self._ahead.popleft()
        self._body = self._body and bool(self._ahead)
        return held

    def data_refused(self, held: _RefAhead | None, *, read: bool = False) -> None:
        """Its count goes on from its DATA line; a body held to its end began it again after it."""
        if held is None or (read and not held.ended):
            return
        lines = held.before + (0 if read else held.lines)
        self.overlong = self.overlong or (not read and held.long)
        if not held.ended:
            self.lines = lines
            return
        # The next held DATA line's count, and the count now unless a "." line began it again since.
        if self._ahead:
            self._ahead[0].before += lines
            self._ahead[0].rcpts += held.rcpts
        if not self._ahead or not self._ahead[0].ended:
            self.lines += lines
            self.rcpts += held.rcpts

    def taken(self, held: _RefAhead | None) -> None:
        if held is None or not held.ended:
            self.reset()

    def restart(self) -> None:
        self._ahead.clear()
        self._body = False

    def reset(self) -> None:
        self.lines = self.rcpts = 0


def state(count: CommandLines | Reference) -> tuple[object, ...]:
    ahead = [(a.at, a.before, a.rcpts, a.lines, a.long, a.ended) for a in count._ahead]
    return (
        count.lines,
        count.rcpts,
        count.overlong,
        count._partial,
        count._head,
        count._partial > 0 and count._cr,
        count._body and count._crlf,
        count._fed,
        count._body,
        ahead,
    )


CAP = COMMAND_LINE_CAP
LINES = [
    b"EHLO x\r\n",
    b"MAIL FROM:<a@b>\r\n",
    b"RCPT TO:<601123456@example.com>\r\n",
    b"rcpt to:<1@x>\r\n",
    b"Rcpt\r\n",
    b"RCP\r\n",
    b"RC\n",
    b"DATA\r\n",
    b"data\r\n",
    b"Data \r\n",
    b"DATA\n",
    b"DATA  \r\n",
    b"DATA   \r\n",  # aiosmtpd runs DATA with any blanks after it
    b"DATA \t \r\n",
    b"DATA\r\r\n",
    b"DATA\r \r\n",  # not: the command is "DATA\r"
    b"DATA" + b" " * 508 + b"\r\n",  # 512 octets: a DATA
    b"DATA" + b" " * 509 + b"\r\n",  # 513: too long for aiosmtpd to run
    b"DATA\t\r\n",
    b"RCPT\r\n",
    b"DATAX\r\n",
    b" DATA\r\n",
    b"D\r\n",
    b"NOOP\r\n",
    b".\r\n",
    b".\n",
    b"..\r\n",
    b". \r\n",
    b"\r\n",
    b"\n",
    b"bare\n",  # a "." line after it ends no body
    b"bare\r",
    b"Subject: x\r\n",
    b"log line\r\n",
    b"x" * (CAP - 1) + b"\r\n",
    b"x" * CAP + b"\r\n",  # at the cap, its CR LF apart
    b"x" * (CAP + 1) + b"\r\n",  # one over
    b"x" * (CAP + 1) + b"\n",
    b"x" * (CAP + 2) + b"\n",
    b"x" * 20_000 + b"\r\n",
]


def session(rng: random.Random) -> bytes:
    """Lines drawn so that DATAs, bodies, "." lines and floods meet in every order."""
    out = []
    for _ in range(rng.randrange(1, 40)):
        roll = rng.random()
        if roll < 0.15:
            out.append(b"DATA\r\n")
        elif roll < 0.25:
            out.append(b".\r\n")
        elif roll < 0.3:
            out.append(b"NOOP\r\n" * rng.randrange(1, 300))
        else:
            out.append(rng.choice(LINES))
    if rng.random() < 0.3:
        out.append(rng.choice(LINES)[: rng.randrange(1, 12)])  # a line not yet ended
    return b"".join(out)


def cuts(rng: random.Random, data: bytes) -> list[bytes]:
    """The input as it may arrive: whole, a line a piece, at random points, or a few octets a piece."""
    how = rng.randrange(4)
    if how == 0:
        return [data]
    if how == 1:
        return data.splitlines(keepends=True)
    step = rng.randrange(1, 5) if how == 2 else 0
    pieces, at = [], 0
    while at < len(data):
        size = step or rng.randrange(1, 200)
        pieces.append(data[at : at + size])
        at += size
    return pieces


def replay(pieces: list[bytes], rng: random.Random) -> None:
    """Both counts through the same pieces, with the guard's other calls in between, compared at each
    until one is refused (the guard then closes the session)."""
    new, ref = CommandLines(), Reference()
    bodies = rng.random() < 0.8
    for piece in pieces:
        buffered = rng.randrange(0, ref._fed + 1) if rng.random() < 0.3 else ref._fed
        taken = ref.feed(piece, buffered, bodies=bodies)
        assert new.feed(piece, buffered, bodies=bodies) == taken
        if not taken:
            return  # the guard closes the session: no piece follows
        assert state(new) == state(ref)
        roll = rng.random()
        if roll < 0.1:
            buffered = rng.randrange(0, ref._fed + 1)
            got, want = new.data_run(buffered), ref.data_run(buffered)
            assert (got and (got.at, got.lines, got.long)) == (want and (want.at, want.lines, want.long))
            answer = rng.random()
            if answer < 0.5:  # its 354 never came, or its mail was not taken
                new.data_refused(got, read=answer < 0.25)
                ref.data_refused(want, read=answer < 0.25)
            elif answer < 0.75:
                new.taken(got)
                ref.taken(want)
        elif roll < 0.13:
            new.reset()
            ref.reset()
        elif roll < 0.15:
            new.restart()
            ref.restart()
        elif roll < 0.2:
            new.passed(piece)
            ref.passed(piece)
        assert state(new) == state(ref)


@pytest.mark.parametrize("seed", range(40))
def test_the_count_agrees_with_the_line_walk_on_random_sessions(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        data = session(rng)
        replay(cuts(rng, data), rng)


ONE_WRITE = (
    b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<1@x>\r\nDATA\r\nSubject: s\r\n\r\n"
    + b"".join(b"log line %d\r\n" % i for i in range(300))
    + b".\r\nMAIL FROM:<a@b>\r\nrcpt to:<2@x>\r\ndata\r\n..\r\n.\r\n"
    + b"NOOP\r\n" * 5
    + b"DATA\r\n"
    + b"x" * 20_000
    + b"\r\n.\r\nQUIT\r\n"
)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 8, 9, 4096, len(ONE_WRITE)])
def test_a_one_write_session_cut_anywhere_counts_the_same(step: int) -> None:
    # The "." line, a DATA line and a line over the cap each split at every octet across two pieces.
    for offset in range(min(step, 12)):
        pieces = [ONE_WRITE[:offset]] + [
            ONE_WRITE[at : at + step] for at in range(offset, len(ONE_WRITE), step)
        ]
        replay([p for p in pieces if p], random.Random(step * 100 + offset))


def test_held_bodies_are_counted_as_held_and_a_flood_after_them_as_commands() -> None:
    count = CommandLines()
    assert count.feed(ONE_WRITE, len(ONE_WRITE))
    # Each "." line begins the count again, as its mail's 250 will: the QUIT after the last body is one.
    assert (count.lines, count.rcpts) == (1, 0)
    # From each DATA line (EHLO, MAIL, DATA; MAIL, data; five NOOPs, DATA), its RCPTs apart.
    ahead = [(a.before, a.rcpts, a.lines, a.long, a.ended) for a in count._ahead]
    assert ahead == [(3, 1, 303, False, True), (2, 1, 2, False, True), (6, 0, 2, True, True)]
    count.settle(len(ONE_WRITE) - len(b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<1@x>\r\nDATA\r\n"))
    # The reader took the first DATA and nothing ran it: its lines are commands, and the next DATA
    # line's count goes on from them.
    assert [(a.before, a.rcpts) for a in count._ahead] == [(3 + 303 + 2, 2), (6, 0)]
    assert not count.overlong
    # The reader took the rest with no DATA run: their lines are commands, one of them over the cap.
    assert count.feed(b"NOOP\r\n", 0) is False
    assert (count.lines, count.rcpts, count.overlong) == (12 + 303 + 2 + 2, 2, True)
