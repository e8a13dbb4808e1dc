"""One CIMD2 TCP session's state: the parser, the outstanding requests and the packet numbers.

They die with the connection, so that a new login starts cleanly at packet number 001; the link
(`link.py`) owns the protocol's behaviour on top of them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from smsc.cimd2.packet import Cimd2Parser, Packet, encode
from smsc.settings import LinkSettings

PACKET_NUMBERS = 128  # odd numbers 001-255: no more requests can be outstanding at once


def effective_window(cfg: LinkSettings) -> int:
    """1 unless the admin set `window` for this link; never more than the 128 odd packet numbers."""
    return min(cfg.window, PACKET_NUMBERS) if cfg.window is not None else 1


@dataclass(slots=True)
class Pending:
    future: asyncio.Future[Packet | None]
    packet: Packet
    tries: int = 1


class Conn:
    """One TCP session: its parser, outstanding requests and packet counter die with it, so that a
    new login starts cleanly at 001."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, window: int) -> None:
        self.reader, self.writer = reader, writer
        self.parser = Cimd2Parser()
        self.pending: dict[int, Pending] = {}
        # The dispatcher paces submits to `stats().window`; this is the protocol's limit on requests of
        # any kind (alive and logout too): stop-and-wait unless configured, and 128 packet numbers.
        self.numbers = asyncio.Semaphore(window)
        self.inbox: asyncio.Queue[Packet] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.reason = ""
        self.last_request = asyncio.get_running_loop().time()
        self.last_acked: tuple[int, int] | None = None  # (op, number) of the last SMSC request we took
        self._next = 1

    def allocate(self) -> int:
        while self._next in self.pending:
            self._next = self._next + 2 if self._next < 255 else 1
        number = self._next
        self._next = number + 2 if number < 255 else 1
        return number

    def send(self, packet: Packet) -> bool:
        if self.closed.is_set():
            return False
        self.writer.write(encode(packet))
        return True

    def close(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.reason = reason
        self.closed.set()
        for entry in self.pending.values():
            if not entry.future.done():
                entry.future.set_result(None)
        self.writer.close()
