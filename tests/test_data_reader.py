"""DATA read in one piece behaves exactly as aiosmtpd's line-by-line DATA.

The same byte streams go through the listener's class twice, once with its own DATA reader and
once with aiosmtpd's, delivered in every way TCP may cut them (at each byte boundary, and one byte
per segment); the replies, what the handler saw and the session afterwards must be the same.
The one departure, lines that a bare LF ends, has a test of its own.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from gateway.smtp import replies as gateway_replies
from gateway.smtp.protocol import LeanSMTP
from gateway.smtp.servers import GatewaySMTP
from gateway.smtp.sessionguard import SessionGuard

SIZE = 120  # small, so that short streams can be oversize
HEAD = b"EHLO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<b@gw.test>\r\nDATA\r\n"
AFTER = b"RSET\r\n"  # answered only if the DATA reader stopped exactly at the end of the body


class Recorder:
    """A handler that keeps what DATA handed over."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, Any]] = []

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        self.seen.append((envelope.content, envelope.original_content))
        return "250 2.0.0 Taken"


class Transport(asyncio.Transport):
    """The socket side of one session: keeps what the server wrote, closes like a socket does."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.out = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.closed:
            self.out += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@contextmanager
def stock_data() -> Iterator[None]:
    """aiosmtpd's own DATA in place of the one-piece reader."""
    ours = LeanSMTP.__dict__["smtp_DATA"]
    LeanSMTP.smtp_DATA = SMTP.smtp_DATA  # type: ignore[method-assign]
    try:
        yield
    finally:
        LeanSMTP.smtp_DATA = ours  # type: ignore[method-assign]


async def settle() -> None:
    """Let the session's coroutine run until it waits for input again."""
    for _ in range(12):
        await asyncio.sleep(0)


async def session(
    segments: list[bytes], *, end: str = "", size: int = SIZE, glued: bool = False, **kwargs: Any
) -> tuple[bytes, list[tuple[Any, Any]], bool]:
    """Replies, what the handler saw, and whether the connection was closed, for these segments."""
    handler = Recorder()
    server = GatewaySMTP(
        handler,
        hostname="gw.test",
        ident="smsgw",
        data_size_limit=size,
        guard=SessionGuard(),
        loop=asyncio.get_running_loop(),
        **kwargs,
    )
    transport = Transport(server)
    server.connection_made(transport)
    await settle()
    if glued:  # a client that sends the body without waiting for 354
        segments = [HEAD + b"".join(segments[:1]), *segments[1:]]
    for segment in segments if glued else [HEAD, *segments]:
        server.data_received(segment)
        await settle()
    if end == "eof":
        server.eof_received()
    elif end == "lost":
        server.connection_lost(ConnectionResetError("reset by peer"))
    elif end == "timeout":
        server._timeout_cb()
    else:
        server.data_received(AFTER)
    await settle()
    if not transport.closed:
        transport.close()
    await settle()
    return bytes(transport.out), handler.seen, transport.closed


def cuts(stream: bytes) -> Iterator[list[bytes]]:
    """The stream whole, cut in two at every byte boundary, and one byte per segment.

    Long streams are cut at every boundary near their ends and near the reader's limit (1001
    here), and at every 29th elsewhere, which keeps the run short.
    """
    yield [stream]
    for i in range(1, len(stream)):
        if len(stream) < 300 or i < 40 or len(stream) - i < 40 or abs(i - 1001) < 12 or i % 29 == 0:
            yield [stream[:i], stream[i:]]
    yield [stream[i : i + 1] for i in range(len(stream))]


async def same_as_stock(stream: bytes, **kwargs: Any) -> tuple[bytes, list[tuple[Any, Any]], bool]:
    for segments in cuts(stream):
        for glued in (False, True):
            ours = await session(segments, glued=glued, **kwargs)
            with stock_data():
                theirs = await session(segments, glued=glued, **kwargs)
            assert ours == theirs, (segments, glued)
    return ours


STREAMS = {
    "plain": b"Subject: hi\r\n\r\nHello\r\n.\r\n",
    "empty": b".\r\n",
    "dot_stuffed": b"..first\r\nmid\r\n.\r\n..\r\n...x\r\n.\r\n",
    "dot_lines_not_end": b"a.\r\n.a\r\n. \r\n.\r.\r\nx\r\n.\r\n",
    "no_crlf_before_dot": b"text.\r\n.\r\n",
    "bare_cr": b"a\r\r\n\r.\r\n\r\n.\r\n",
    "blank_lines": b"\r\n\r\n\r\n.\r\n",
    "exactly_the_limit": b"x" * (SIZE - 2) + b"\r\n.\r\n",
    "one_over_the_limit": b"x" * (SIZE - 1) + b"\r\n.\r\n",
    "oversize_then_more": b"y" * 60 + b"\r\n" + b"z" * 70 + b"\r\n..\r\n.\r\n",
    "eight_bit": "Grüße aus Zürich\r\n.\r\n".encode(),
}


@pytest.mark.parametrize("name", sorted(STREAMS))
async def test_data_is_read_as_aiosmtpd_reads_it(name: str) -> None:
    replies, _seen, _closed = await same_as_stock(STREAMS[name])
    assert replies.endswith(b"\r\n250 2.0.0 OK\r\n")  # the session went on in step: RSET was answered


async def test_the_body_arrives_unstuffed_and_whole() -> None:
    replies, seen, _ = await same_as_stock(STREAMS["dot_stuffed"])
    assert seen[-1] == (b".first\r\nmid\r\n", b".first\r\nmid\r\n")
    assert b"250 2.0.0 Taken" in replies
    assert replies.count(b"250 2.0.0 Taken") == 1  # the second "mail" was RSET's 500s, not DATA


async def test_lines_a_bare_lf_ends_are_unstuffed_but_never_end_the_data() -> None:
    """Where aiosmtpd departs from the mail servers people send through: a line that a bare LF ends
    loses the dot its client doubled (Python's smtplib stuffs after every LF; Postfix and Exim read
    such lines), while the end of data is only CRLF.CRLF, so "\\n.\\n" ends nothing (no smuggling)."""
    stream = b"one\ntwo\n.\n..three\r\n.\n..x\n.\r\n...\r\n.\r\n"
    for segments in cuts(stream):
        for glued in (False, True):
            replies, seen, _ = await session(segments, glued=glued)
            assert seen == [(b"one\ntwo\n\n.three\r\n\n.x\n\r\n..\r\n",) * 2], (segments, glued)
            assert replies.count(b"250 2.0.0 Taken") == 1 and replies.endswith(b"\r\n250 2.0.0 OK\r\n")


async def test_oversize_is_refused_and_swallowed() -> None:
    replies, seen, _ = await same_as_stock(STREAMS["one_over_the_limit"])
    assert seen == [] and b"552 5.3.4" in replies


@pytest.mark.parametrize(
    "stream",
    [
        b"w" * 1500 + b"\r\n.\r\n",  # one line longer than the reader's limit: 552 (aiosmtpd's 500)
        (b"v" * 100 + b"\r\n") * 15 + b".\r\n",  # many lines past the reader's limit: 552
        b"u" * 1002 + b"\r\n.\r\n",  # the line just over the reader's limit
        b"t" * 998 + b"\r\n.\r\n",
        b"." + b"s" * 200 + b"\r\n" + b"r" * 1500 + b"\r\n.\r\n",  # oversize before the long line: 552
    ],
    ids=["long_line", "long_body", "limit_plus_one", "limit_minus_three", "oversize_then_long_line"],
)
async def test_past_the_readers_limit_aiosmtpd_takes_over(stream: bytes) -> None:
    replies, seen, _ = await same_as_stock(stream)
    assert seen == [] and replies.endswith(b"\r\n250 2.0.0 OK\r\n")
    assert gateway_replies.too_big(SIZE).encode() in replies  # F11: each is over the size limit


async def test_an_endless_line_is_counted_not_kept() -> None:
    """Past the limits a line's fragments are dropped as they come: aiosmtpd gathered them all,
    so one line without an end held its whole length in memory whatever the size limit."""
    segments = [b"x" * 2**20] * 16 + [b"\r\n.\r\n"]
    tracemalloc.start()
    try:
        replies, seen, _ = await session(segments)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == [] and gateway_replies.too_big(SIZE).encode() in replies
    assert replies.endswith(b"\r\n250 2.0.0 OK\r\n")
    assert peak < 8 * 2**20, peak  # a few reads, not the 16 MiB line


async def test_big_limit_large_body_is_kept() -> None:
    stream = (b"line of text\r\n" * 200) + b".\r\n"
    _replies, seen, _ = await same_as_stock(stream, size=4000)
    assert seen[-1][1] == b"line of text\r\n" * 200


@pytest.mark.parametrize("smtputf8", [False, True])
async def test_decoded_content_as_aiosmtpd(smtputf8: bool) -> None:
    """With decode_data, content is text (strict ASCII refuses 8-bit unless SMTPUTF8 is on)."""
    replies, seen, _ = await same_as_stock(STREAMS["eight_bit"], decode_data=True, enable_SMTPUTF8=smtputf8)
    if smtputf8:
        assert seen[-1][0] == "Grüße aus Zürich\r\n"
    else:
        assert seen == [] and gateway_replies.NON_ASCII.encode() in replies


@pytest.mark.parametrize("end", ["eof", "lost", "timeout"])
async def test_client_gone_mid_data(end: str) -> None:
    """A body cut off by EOF, a reset or the idle timer hands nothing to the handler."""
    for stream in (b"Subject: cut\r\n\r\nhalf", b"Subject: cut\r\n.", b"", b"x\r\n.\r"):
        _replies, seen, closed = await same_as_stock(stream, end=end)
        assert seen == [] and closed


async def test_a_body_in_one_segment_takes_at_most_two_reads() -> None:
    """The point of the reader: not one read per line."""
    calls: list[bytes] = []
    real = asyncio.StreamReader.readuntil

    async def counting(reader: asyncio.StreamReader, separator: bytes = b"\n") -> bytes:
        line = await real(reader, separator)
        calls.append(line)
        return line

    body = b"".join(b"Header-%d: value\r\n" % i for i in range(20)) + b"\r\nText\r\n.\r\n"
    asyncio.StreamReader.readuntil = counting  # type: ignore[method-assign]
    try:
        _, seen, _ = await session([body], size=4000)
    finally:
        asyncio.StreamReader.readuntil = real  # type: ignore[method-assign]
    assert seen[-1][1] == body[:-3]
    data_reads = [c for c in calls if not c.endswith(b"DATA\r\n") and c not in HEAD and c != AFTER]
    assert len(data_reads) <= 2
