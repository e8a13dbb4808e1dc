"""The benchmarks' load generator: a deliberately thin SMTP client and the mails it sends.

It costs far less CPU than the gateway it measures (one reply per command, no parsing beyond the
code), so that the figures are the gateway's; bench/e2e.py and the benchmarks built on it use it.
"""

from __future__ import annotations

import asyncio
import functools
import time

SENDER = "bench@acme.example"


def message(i: int, rcpts: list[str]) -> bytes:
    """A typical short staff mail, as an Outlook-like client sends it (CRLF, 8bit UTF-8 text)."""
    return (
        f"From: {SENDER}\r\nTo: {', '.join(rcpts)}\r\nSubject: Bench {i}\r\n"
        f"Message-ID: <bench-{i}-{time.time_ns()}@acme.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"Benchmark message number {i}. The meeting is moved to 10:00, room 4.\r\n"
    ).encode()


def number(i: int) -> str:
    return f"+4860{i % 10_000_000:07d}@sms.example.com"


class Client:
    """A deliberately thin SMTP client (one reply per command, no parsing beyond the code), so that
    the load generator costs far less CPU than the gateway it measures."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        client = cls(*await asyncio.open_connection("127.0.0.1", port))
        await client.reply()
        await client.command(b"EHLO bench.example")
        return client

    async def reply(self) -> bytes:
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            if line[3:4] != b"-":
                return line

    async def command(self, line: bytes, expect: bytes = b"2") -> bytes:
        self.writer.write(line + b"\r\n")
        answer = await self.reply()
        if not answer.startswith(expect):
            raise RuntimeError(f"{line!r} -> {answer!r}")
        return answer

    async def group(self, lines: list[bytes]) -> None:
        """RFC 2920: MAIL, RCPT… and DATA in one write, then every reply checked in order."""
        self.writer.write(b"".join(line + b"\r\n" for line in lines))
        for line in lines:
            answer = await self.reply()
            if not answer.startswith(b"354" if line == b"DATA" else b"2"):
                raise RuntimeError(f"{line!r} -> {answer!r}")


async def sender(
    port: int,
    jobs: list[tuple[int, list[str]]],
    latencies: list[float] | None = None,
    interval: float = 0.0,
    pipelining: bool = False,
) -> None:
    client = await Client.connect(port)
    next_at = time.perf_counter()
    for i, rcpts in jobs:
        if interval:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        data = message(i, rcpts)
        envelope = [f"MAIL FROM:<{SENDER}>".encode(), *(f"RCPT TO:<{r}>".encode() for r in rcpts), b"DATA"]
        if pipelining:
            await client.group(envelope)
        else:
            for line in envelope[:-1]:
                await client.command(line)
            await client.command(b"DATA", expect=b"354")
        t0 = time.perf_counter()
        client.writer.write(data.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        answer = await client.reply()
        if latencies is not None:
            latencies.append(time.perf_counter() - t0)
        if not answer.startswith(b"250"):
            raise RuntimeError(f"DATA -> {answer!r}")
    await client.command(b"QUIT")
    client.writer.close()


async def send_numbered(port: int, first: int, count: int, conns: int, per_mail: bool = False) -> None:
    """Mails `first` .. `first + count - 1`, one SMS each, spread over `conns` connections at a time;
    with `per_mail` each mail has a connection of its own, as relay MTAs often send."""

    async def one_by_one(jobs: list[tuple[int, list[str]]]) -> None:
        for job in jobs:
            await sender(port, [job])

    jobs = [(i, [number(i)]) for i in range(first, first + count)]
    each = one_by_one if per_mail else functools.partial(sender, port)
    await asyncio.gather(*(each(jobs[k::conns]) for k in range(conns)))
