"""CIMD2 peers and recorders for tests: Kannel's `test_cimd2` simulator run as a subprocess (an
independent implementation of the SMSC side), `ScriptedSmsc`, a listener whose packets the test
writes by hand, and `RecordingEvents` (`tests.fakes.events.EventRecorder`), a `LinkEvents` that keeps
what a link hands up and lets a test wait for it without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from smsc.cimd2.packet import Cimd2Parser, Op, Packet, encode
from tests.fakes.events import EventRecorder

TEST_CIMD2 = Path("/usr/lib/kannel/test/test_cimd2")  # Debian package kannel-extras


@dataclass
class KannelCimd2:
    port: int
    process: asyncio.subprocess.Process

    async def wait_exit(self, within: float = 10.0) -> int:
        return await asyncio.wait_for(self.process.wait(), within)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    # Probing with connect() would use up test_cimd2's single connection, so ask the kernel instead.
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def _require_binary() -> None:
    if not TEST_CIMD2.exists():
        message = f"{TEST_CIMD2} not installed (Debian package kannel-extras)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextlib.asynccontextmanager
async def kannel_cimd2(
    *, activity: int = 1, spew: int = 0, user: str = "foo", password: str = "bar"
) -> AsyncIterator[KannelCimd2]:
    """Run test_cimd2 on a free port until the block ends. It serves ONE connection and exits when the
    client disconnects, so each test starts its own."""
    _require_binary()
    quiet = asyncio.subprocess.DEVNULL
    # The free port is free only when asked: an outgoing connection of the test run may take it
    # as its ephemeral port before test_cimd2 binds it (it then exits with 1). A few new ports.
    for attempt in range(5):
        port = _free_port()
        args = ["--port", str(port), "--user", user, "--password", password, "--activity", str(activity)]
        if spew:
            args += ["--spew", str(spew)]
        process = await asyncio.create_subprocess_exec(
            str(TEST_CIMD2), *args, "--logging", "0", stdin=quiet, stdout=quiet, stderr=quiet
        )
        async with asyncio.timeout(10):
            while not _listening(port) and process.returncode is None:
                await asyncio.sleep(0.01)
        if process.returncode is None:
            break
        if attempt == 4:
            pytest.fail(f"test_cimd2 exited with {process.returncode} before listening, five ports in a row")
    try:
        yield KannelCimd2(port, process)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


RecordingEvents = EventRecorder  # the name the CIMD2 tests know it by


class PeerConnection:
    """One client connection to `ScriptedSmsc`, driven packet by packet by the test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = Cimd2Parser()
        self._ready: list[Packet] = []

    async def next(self, within: float = 10.0) -> Packet:
        """The next packet the client sent (hang guard `within`); EOFError when it disconnected."""
        async with asyncio.timeout(within):
            while not self._ready:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("client disconnected")
                self._ready += self.parser.feed(data)
        return self._ready.pop(0)

    def send(self, item: Packet | bytes) -> None:
        self.writer.write(item if isinstance(item, bytes) else encode(item))

    async def login(self) -> Packet:
        """Accept whatever login comes; returns the 01 packet."""
        packet = await self.next()
        assert packet.op == Op.LOGIN, packet.describe()
        self.send(Packet(Op.LOGIN_RESP, packet.number))
        return packet

    def close(self) -> None:
        self.writer.close()


class ScriptedSmsc:
    """A bare TCP listener whose every byte is written by the test: for the protocol corners (duplicates,
    NACKs, empty addresses, odd answers) that no well-behaved SMSC produces on demand."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._accepted: asyncio.Queue[PeerConnection] = asyncio.Queue()
        self._connections: list[PeerConnection] = []

    async def __aenter__(self) -> ScriptedSmsc:
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for conn in self._connections:
            conn.close()
        await self._server.wait_closed()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = PeerConnection(reader, writer)
        self._connections.append(conn)
        await self._accepted.put(conn)

    async def accept(self, within: float = 10.0) -> PeerConnection:
        return await asyncio.wait_for(self._accepted.get(), within)
