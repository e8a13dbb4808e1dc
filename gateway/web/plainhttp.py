"""Plain HTTP sent to the panel's HTTPS port: answered in plain HTTP, then closed.

A browser given http://gw.example.com:8443/ for the panel's TLS port sent its request in the clear;
the TLS layer, finding no handshake, closed the connection, and the browser said only "connection
closed". The first byte tells the two apart: a TLS connection starts with a handshake record (0x16;
an old SSLv2 hello has its top bit set), an HTTP request with the capital letters of its method.
A request whose head comes whole (within `MAX_HEAD` bytes and the connection's request deadline,
which gateway/web/connections.py keeps) and names a Host the panel answers to is sent to the same
host, port and path over https:// (301); any other HTTP request is told in a 400 that the port
speaks HTTPS; bytes that are neither are closed on, as the TLS layer did.

The Host goes into Location only after the panel's own host check (gateway/web/hosts.py), so that
a name the panel refuses is not sent back. That check reads the Host as the panel's pages do, a
plain `host[:port]` or nothing (`parse_host`): `[::1]@evil.example` and `panel:1, evil.example` are
refused there, so nothing after the host can send the browser elsewhere. A pattern of its own here
answered a name the pages answer to (`my_host`, a machine's name with an underscore) with a 400.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import h11
import structlog

log = structlog.get_logger(__name__)

# A request head larger than this is no browser's mistyped address: 400 without reading more.
MAX_HEAD = 8 * 1024
# A longer path and query is not put into Location (the redirect goes to the panel's start page).
MAX_TARGET = 2048
# Capital letters, then a space: the start of a request line (h11 checks the rest).
METHOD_LETTERS = re.compile(rb"[A-Z]{1,20}")

NOT_HTTPS = (
    b"This port of the panel speaks HTTPS only, and a plain http:// request was sent to it:"
    b" open the panel's address with https:// instead.\n"
)


def starts_plain(first: int) -> bool:
    """A capital letter, as an HTTP method starts: never the first byte of TLS."""
    return 0x41 <= first <= 0x5A


class PlainHTTP:
    """What came instead of a TLS handshake, read until it can be answered.

    The answer is followed by our half-close, and the connection's own close (`closing`: the
    deadline then ends it once the answer is out), so that a request body still on its way does
    not turn the close into a reset that loses the answer at the client."""

    def __init__(
        self,
        transport: asyncio.Transport,
        known: Callable[[str], bool],
        address: str,
        closing: Callable[[], None],
    ) -> None:
        self.transport = transport
        self.known = known
        self.address = address
        self.closing = closing
        self.answered = False  # the 301 or 400 is written
        self._done = False  # answered or closed: what comes after is not read
        self._start = b""  # the method's letters, until the space after them
        self._http: h11.Connection | None = None  # once it is HTTP
        self._fed = 0  # bytes handed to h11, at most MAX_HEAD

    def feed(self, data: bytes) -> None:
        if self._done:  # the rest of a request already answered
            return
        if self._http is None:
            self._start += data
            letters = METHOD_LETTERS.match(self._start)
            if letters is None or len(self._start) == letters.end():
                if letters is None:
                    self._close()
                return  # all capitals so far
            if self._start[letters.end()] != ord(" "):
                self._close()
                return
            self._http = h11.Connection(h11.SERVER)
            data, self._start = self._start, b""
        # Only the first MAX_HEAD bytes are read (h11's own bound holds only for a head that comes
        # in pieces): a head not whole within them is answered 400.
        data = data[: MAX_HEAD - self._fed]
        self._fed += len(data)
        try:
            self._http.receive_data(data)
            event = self._http.next_event()
        except h11.RemoteProtocolError:
            event = None
        if isinstance(event, h11.Request):
            self._answer(*self._redirect(event), head_only=event.method == b"HEAD")
        elif event is None or self._fed >= MAX_HEAD:
            self._answer(400, None, head_only=False)

    def eof(self) -> None:
        """The client's half-close before the answer: a request it began is told what it is."""
        if self._http is not None and not self.answered:
            self._answer(400, None, head_only=False)

    def _redirect(self, request: h11.Request) -> tuple[int, str | None]:
        hosts = [v for k, v in request.headers if k == b"host"]
        if len(hosts) != 1:
            return 400, None
        authority = hosts[0].decode("latin-1")
        if not self.known(authority):  # `hosts.known_host`: parsed strictly, or not known
            return 400, None
        target = request.target.decode("ascii")  # h11 lets only visible ASCII through
        path = target if target.startswith("/") and len(target) <= MAX_TARGET else "/"
        return 301, f"https://{authority}{path}"

    def _answer(self, status: int, location: str | None, *, head_only: bool) -> None:
        self.answered = self._done = True
        log.debug("web.plain_http_on_tls_port", address=self.address, status=status)
        if location is None:
            head, body = "400 Bad Request", NOT_HTTPS
        else:
            head = "301 Moved Permanently\r\nLocation: " + location
            body = f"The panel is served over HTTPS on this port: {location}\n".encode("ascii")
        self.transport.write(
            f"HTTP/1.1 {head}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
            # Not kept by the browser: were TLS turned off later, the http:// address would work again.
            "Cache-Control: no-store\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii")
            + (b"" if head_only else body)
        )
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.closing()

    def _close(self) -> None:
        """Neither TLS nor HTTP: closed at once, as the TLS layer closes on a broken handshake (and
        logged as one)."""
        self._done = True
        self.transport.abort()
