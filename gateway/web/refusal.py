"""A connection over one of the panel's caps (gateway/web/gate.py), told so in HTTP before it closes.

Closed at once, as it was, the browser of an admin behind a crowded office address showed an empty
response, or "connection reset", and nothing said why or that waiting would help. The answer is a
short 503 with Retry-After and a page naming the cap, written as soon as the connection can carry
it: at once in plain HTTP (without waiting for the request, so that a silent client costs nothing
more), after the handshake on TLS. Plain HTTP is then half-closed and what the client still sends
is read and dropped until it closes, so that its request arriving after our close does not turn
into a reset that loses the answer at the client (as gateway/web/plainhttp.py does). Every refusal
ends within `REFUSAL_SECONDS`, and at most `ConnectionLimits.refusals` are told at once: beyond
them a connection is closed without a word, so that a flood holds a bounded few descriptors.
"""

from __future__ import annotations

import asyncio
import html
from asyncio import sslproto
from typing import Any

from gateway.web.gate import PER_ADDRESS, Gate

# The longest a refused connection is kept: the TLS handshake and the answer's way out.
REFUSAL_SECONDS = 1.0
# What the browser is told to wait before asking again: connections at a cap come and go in seconds.
RETRY_AFTER_SECONDS = 5

_WHY = {
    PER_ADDRESS: (
        "There are too many connections to the panel from your address ({address}) at the moment:"
        " other browsers or programs behind the same address (an office network, for example) are"
        " using all the panel takes from one address."
    ),
}
_WHY_TOTAL = "The panel has as many connections open as it takes at the moment."


def refusal_page(limit: str, address: str) -> bytes:
    why = _WHY.get(limit, _WHY_TOTAL).format(address=html.escape(address))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Too many connections</title></head>\n<body><h1>Too many connections</h1>\n"
        f"<p>{why}</p>\n<p>Try again in a few seconds.</p></body></html>\n"
    ).encode()


def answer(limit: str, address: str) -> bytes:
    page = refusal_page(limit, address)
    return (
        b"HTTP/1.1 503 Service Unavailable\r\n"
        + f"Retry-After: {RETRY_AFTER_SECONDS}\r\n".encode()
        + b"Content-Type: text/html; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
        b"Cache-Control: no-store\r\n"
        + f"Content-Length: {len(page)}\r\nConnection: close\r\n\r\n".encode()
        + page
    )


def tell(transport: Any, limit: str, address: str) -> None:
    """The answer, then our half of the close (on TLS the close_notify after it)."""
    transport.write(answer(limit, address))
    if transport.can_write_eof():
        transport.write_eof()  # then read what comes until the client closes
    else:
        transport.close()


def refuse(raw: asyncio.Transport, gate: Gate, limit: str, address: str) -> None:
    """Called in place of the refused connection's `connection_made` (as the TLS layer is set up
    there, so that uvloop hands the first bytes to the right protocol)."""
    if gate.refusing >= gate.limits.refusals:
        raw.abort()
        return
    _Refusal(raw, gate, limit, address).start()


class _Refusal(asyncio.Protocol):
    def __init__(self, raw: asyncio.Transport, gate: Gate, limit: str, address: str) -> None:
        self.raw = raw
        self.gate = gate
        self.limit, self.address = limit, address
        self.loop = asyncio.get_running_loop()
        self.over = False
        self.deadline: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.gate.refusing += 1
        self.deadline = self.loop.call_later(REFUSAL_SECONDS, self._end)
        if self.gate.tls is None:
            self.raw.set_protocol(self)
            self.connection_made(self.raw)
            return
        waiter = self.loop.create_future()
        waiter.add_done_callback(self._handshake_over)
        tls = sslproto.SSLProtocol(
            self.loop,
            self,
            self.gate.tls,
            waiter,
            server_side=True,
            ssl_handshake_timeout=REFUSAL_SECONDS,
            ssl_shutdown_timeout=REFUSAL_SECONDS,
        )
        self.raw.set_protocol(tls)
        tls.connection_made(self.raw)

    def connection_made(self, transport: Any) -> None:  # uvloop's are no asyncio.Transport subclasses
        tell(transport, self.limit, self.address)

    def data_received(self, data: bytes) -> None:
        pass  # the request, not worth reading: the answer does not depend on it

    def eof_received(self) -> bool:
        return False  # the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        self._done()

    def _handshake_over(self, waiter: asyncio.Future[None]) -> None:
        if waiter.cancelled() or waiter.exception() is not None:  # retrieved: asyncio logs it otherwise
            self._end()

    def _end(self) -> None:
        self.raw.abort()
        self._done()

    def _done(self) -> None:
        if self.over:
            return
        self.over = True
        self.gate.refusing -= 1
        if self.deadline is not None:
            self.deadline.cancel()
