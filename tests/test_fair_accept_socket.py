"""The socket `FairServer` hands the loop for each connection is the one `socket.accept` would give:
the same family, type and protocol (as the same enums), non-blocking, and closed with its transport.
It is made from the listening socket's family and type read once (`fairaccept._Accepted`)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from gateway.smtp import fairaccept
from gateway.smtp.fairaccept import FairServer


class Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)
        if data.endswith(b"bye\n"):
            self.transport.close()


def listener(family: socket.AddressFamily) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    sock.listen(16)
    return sock


def what_accept_gives(family: socket.AddressFamily) -> tuple[Any, ...]:
    with listener(family) as sock, socket.create_connection(sock.getsockname()[:2]):
        conn, _peer = sock.accept()
        with conn:
            return (conn.family, type(conn.family), conn.type, type(conn.type), conn.proto)


async def serve_once(family: socket.AddressFamily, monkeypatch: pytest.MonkeyPatch) -> list[socket.socket]:
    opened: list[socket.socket] = []
    original = FairServer._open

    async def recorded(self: FairServer, conn: socket.socket) -> object:
        opened.append(conn)
        return await original(self, conn)

    monkeypatch.setattr(FairServer, "_open", recorded)
    sock = listener(family)
    server = FairServer(Echo, sock, shared=False)
    server.start_serving()
    try:
        reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        for line in (b"hi\n", b"bye\n"):
            writer.write(line)
            assert await asyncio.wait_for(reader.readline(), 10) == line
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server's transport
        writer.close()
    finally:
        server.close()
    await asyncio.sleep(0.05)
    return opened


def families() -> list[socket.AddressFamily]:
    try:
        listener(socket.AF_INET6).close()
    except OSError:
        return [socket.AF_INET]
    return [socket.AF_INET, socket.AF_INET6]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_accepted_socket_as_accept_gives_it(loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    runner: Any = asyncio.run
    if loop == "uvloop":
        runner = pytest.importorskip("uvloop").run
    for family in families():
        opened = runner(serve_once(family, monkeypatch))
        monkeypatch.undo()
        assert len(opened) == 1
        conn = opened[0]
        assert isinstance(conn, socket.socket) and isinstance(conn, fairaccept._Accepted)
        assert (conn.family, type(conn.family), conn.type, type(conn.type), conn.proto) == what_accept_gives(
            family
        )
        assert conn.fileno() == -1  # closed with its transport: no descriptor left behind


def test_a_copy_of_an_accepted_socket_keeps_its_family_and_type() -> None:
    # `dup()` makes one of the socket's own class (`self.__class__`): with the family and type set only
    # after the accept made it, reading them on the copy raised AttributeError.
    with listener(socket.AF_INET) as sock, socket.create_connection(sock.getsockname()[:2]):
        fd, _peer = sock._accept()  # as `FairServer._accept_one` takes it
        with (
            fairaccept._Accepted(socket.AF_INET, socket.SOCK_STREAM, 0, fileno=fd) as conn,
            conn.dup() as copy,
        ):
            assert (copy.family, copy.type) == (socket.AF_INET, socket.SOCK_STREAM)
            assert type(copy.family) is socket.AddressFamily
