"""The panel's connections: how many, from where, and how long a client may keep one waiting.

uvicorn takes every connection and waits as long as the client likes for its request (its
keep-alive timeout starts only after a first answer): 4,066 sockets that each sent half a POST
held all 4,096 descriptors of the daemon (systemd's LimitNOFILE), and SMTP intake stopped. Here
each connection is counted the moment it is accepted, before its TLS handshake (which the panel
therefore does itself: under uvicorn's, a handshake that never ended was neither counted nor
timed); one over a cap is told so in a 503 and closed (gateway/web/refusal.py); and a connection is
closed when the client keeps it
waiting for `request_seconds`: its request (handshake, head and body) not in within that time of
the connection or of the previous answer, an answer it does not read (writing stalled that long,
or a finished answer still not drained), or a close it does not complete (the answer not drained,
or, on TLS, its close_notify not back within `CLOSE_NOTIFY_SECONDS` of our own: browsers often
never send one). When the total is reached, the oldest connection the panel is not working on
(waiting for a request, for its client to read, or closing) makes room for the new one, but not a
keep-alive one its client is using, answered and quiet for less than `stalled_seconds` (a burst of
connections from elsewhere reset a browser's next request); when an address holds its share, the
oldest of its own that has stood idle for `stalled_seconds`, or whose request (head and body) has
not come whole within `head_seconds` of its first byte, does (an office behind one address was kept
out by a few stalled sockets until their deadline, or by trickling ones); with none such, a newcomer
whose request comes whole within `stalled_seconds` takes the place of one whose request began before
it and is still coming (with its head whole only, of one whose head is: `Gate.head_whole`). A cap or
a deadline that bites is logged (`web.limit_hit`), at most once a second per limit, the rest
counted, so that a flood does not become a flood of log lines; a connection that never sent a byte
of a request (a browser's spare pre-connection) is closed at the deadline without one. uvicorn's own
warnings about requests go the same way (gateway/web/running.py). Plain HTTP sent to the TLS port is
answered in plain HTTP (gateway/web/plainhttp.py), within the same count and deadline."""

from __future__ import annotations

import asyncio
import functools
import re
from asyncio import sslproto
from typing import Any

import h11
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway.web import refusal, tcpinfo
from gateway.web.gate import CLOSING, HANDLING, HANDSHAKE, PER_ADDRESS, REQUEST, WRITING, Gate
from gateway.web.hosts import known_host
from gateway.web.plainhttp import MAX_HEAD, PlainHTTP, starts_plain
from gateway.web.refusal import refuse
from gateway.web.running import RequestWarnings, RunningRequests

log = structlog.get_logger(__name__)


# How long a closing TLS connection waits for the client's close_notify once ours and the answer are
# out: nothing is lost without it (the answer has gone whole), and a client that never sends it held
# its descriptor for the whole shutdown timeout.
CLOSE_NOTIFY_SECONDS = 1.0
# What the TLS layer buffers before it pauses the app: the plain transport's own default, so that the
# write deadline asks the same of a client on either (asyncio's TLS default is 512 KiB).
TLS_WRITE_BUFFER = 64 * 1024
HEAD_END = re.compile(rb"\r?\n\r?\n")  # h11 takes a bare line feed as a line's end too


class _TLS(sslproto.SSLProtocol):
    """asyncio's TLS layer, noting whether the client has sent anything during its handshake, and
    handing what it sends to `plain` instead when its first byte starts plain HTTP, not TLS."""

    heard = False
    heard_at: float | None = None  # loop time of the handshake's first byte
    diverted = False
    plain: PlainHTTP  # set by the connection before any byte can come
    _buffer: memoryview

    def get_buffer(self, n: int) -> memoryview:
        self._buffer = super().get_buffer(n)
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        if nbytes > 0 and not self.heard:
            self.heard = True
            self.heard_at = self._loop.time()
            self.diverted = starts_plain(self._buffer[0])
        if self.diverted:
            self.plain.feed(bytes(self._buffer[:nbytes]))
        else:
            super().buffer_updated(nbytes)

    def eof_received(self) -> bool | None:
        if not self.diverted:
            return super().eof_received()
        self.plain.eof()
        return False  # the socket's transport closes


class PanelConnection(H11Protocol):
    """uvicorn's h11 protocol, counted by the gate and closed when its client keeps it waiting."""

    def __init__(self, *args: Any, gate: Gate, names: frozenset[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = gate
        self.names = names  # the Host names it answers to, besides IP addresses (gateway/web/hosts.py)
        self._requests = RunningRequests(self.tasks)
        self.tasks = self._requests  # type: ignore[assignment]
        self.logger = RequestWarnings(  # type: ignore[assignment]
            self.logger, gate.bite, gate.warnings, lambda: self._address, self.limit_concurrency
        )
        self._raw: asyncio.Transport | None = None  # the socket's own transport, under any TLS
        self._tls: _TLS | None = None
        self._address = ""
        self._deadline: asyncio.TimerHandle | None = None
        self._given = 0.0  # what the deadline armed last gave the client (a waiting newcomer's is short)
        self._heard = False  # a byte of the next request is in
        self._heard_at = 0.0  # loop time of its first byte
        self._held = b""  # over its address's share: its request head, read here first (`Gate.admit`)
        self._opened_at = 0.0  # loop time
        self._answered = False  # a request has had its answer on this connection
        self._ended = False  # lost (closed, refused, or its handshake failed)
        self._closing_since: float | None = None  # loop time the close began
        self._acked: int | None = None  # the client's acknowledged bytes at the last look
        self._moved_at = 0.0  # loop time they last moved

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # (uvloop's transports, the daemon's, are not asyncio.Transport subclasses: no isinstance.)
        if self._raw is not None:  # the TLS layer's transport, its handshake done
            transport.set_write_buffer_limits(high=TLS_WRITE_BUFFER)
            super().connection_made(transport)
            return
        peer = transport.get_extra_info("peername")
        self._opened_at = self.loop.time()
        self._address = str(peer[0]) if peer else ""
        if (refused := self.gate.admit(self, self._address)) is not None:
            refuse(transport, self.gate, refused, self._address)
            return
        self._raw = transport
        self._arm(self.gate.limits.stalled_seconds if self in self.gate.waiting else None)
        if self.gate.tls is None:
            super().connection_made(transport)
            return
        # What `create_server(ssl=...)` does inside, done here so that the handshake is counted and
        # timed as part of the request. In place, before this call returns: `loop.start_tls` would
        # switch protocols a loop iteration later, and uvloop hands the ClientHello to whichever
        # protocol the socket has by then (pause_reading here does not hold it back).
        seconds = self.gate.limits.request_seconds
        waiter = self.loop.create_future()
        waiter.add_done_callback(self._handshake_over)
        self._tls = _TLS(
            self.loop,
            self,
            self.gate.tls,
            waiter,
            server_side=True,
            # The request deadline (`_deadline_passed`) ends a handshake first and says why; this,
            # later, only if it did not.
            ssl_handshake_timeout=2 * seconds,
            # The answer's drain is timed by the write deadline and the close_notify by
            # CLOSE_NOTIFY_SECONDS (`_closing`); this is the backstop, the drain's own bound.
            ssl_shutdown_timeout=seconds,
        )
        self._tls.plain = PlainHTTP(
            transport, functools.partial(known_host, self.names), self._address, self._begin_close
        )
        transport.set_protocol(self._tls)
        self._tls.connection_made(transport)

    def _handshake_over(self, waiter: asyncio.Future[None]) -> None:
        """Done, failed, timed out or abandoned; only done calls `connection_made` (before this)."""
        error = None if waiter.cancelled() else waiter.exception()  # retrieved: asyncio logs it otherwise
        if self.transport is None:
            if self._tls is None or not self._tls.plain.answered:  # (plain HTTP logs its answer)
                log.debug("web.tls_handshake_failed", address=self._address, error=str(error))
            self._gone()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        if self.transport is None:  # refused, or never past its TLS handshake
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._heard:
            self._heard, self._heard_at = True, self.loop.time()
        if self in self.gate.waiting:
            if self._ended:  # refused, and closing: the rest is not read
                return
            self._held += data
            if not HEAD_END.search(self._held) and len(self._held) < MAX_HEAD:
                return
            if not self.gate.head_whole(self, self._held):
                self._ended = True
                refusal.tell(self.transport, PER_ADDRESS, self._address)
                self._arm(refusal.REFUSAL_SECONDS)  # its client's own close is awaited that long
                return
            data, self._held = self._held, b""
            self._arm()  # counted now: the request's own time
        super().data_received(data)

    def on_response_complete(self) -> None:
        """Called by the answer's last write, from the request's task; uvicorn would start the next
        pipelined request there and then, while that task still counts as running: each pipelining
        connection then counted two against `limit_concurrency`, and a cap full of them reached it,
        answering 503 to an admin whose connection had got in. The next request starts once the
        task has ended (its own done callbacks first: uvicorn's count drops before)."""
        running = self._requests.latest
        if running is not None and not running.done():
            running.add_done_callback(self._response_over)
        else:
            self._response_over()

    def _response_over(self, _task: object = None) -> None:
        if self._ended:  # gone meanwhile: nothing to start or time
            return
        super().on_response_complete()
        self._answered = True
        # A pipelined request's first bytes, already in, belong to the next request.
        self._heard, self._heard_at = bool(self.conn.trailing_data[0]), self.loop.time()
        if self.transport.is_closing():
            self._begin_close()
        else:
            self._arm()  # the next request gets its own time, and the answer as long to be read

    def pause_writing(self) -> None:
        super().pause_writing()
        self._arm()  # the client has as long to read (and the app resumes) as it had to ask

    # uvicorn's ways of closing a connection, so that the close is timed from its start (any other,
    # such as an error of the app, is found by the deadline's next look).
    def timeout_keep_alive_handler(self) -> None:
        super().timeout_keep_alive_handler()
        self._begin_close()

    def shutdown(self) -> None:
        super().shutdown()
        if self.transport.is_closing():
            self._begin_close()

    def send_400_response(self, msg: str) -> None:
        super().send_400_response(msg)
        self._begin_close()

    def phase(self) -> str:
        """What the connection waits for; only in HANDLING is it the panel's turn (the app running)."""
        if self.transport is None:
            return CLOSING if self._tls is not None and self._tls.plain.answered else HANDSHAKE
        if self.transport.is_closing():
            return CLOSING
        if self.flow.write_paused or (
            self.cycle is not None and self.cycle.response_complete and self._buffered()
        ):
            return WRITING
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            return REQUEST
        return HANDLING

    def rank(self) -> int:
        """How expendable the connection is when the total is reached (lowest goes first): silent
        (never a byte of a request), then waiting for its request or closing, then writing."""
        phase = self.phase()
        if phase == WRITING:
            return 2
        if phase in (HANDSHAKE, REQUEST) and not self._spoke():
            return 0
        return 1

    def idle_for(self, seconds: float) -> bool:
        """Whether nothing has moved on the connection for `seconds`, as its socket has seen it: no
        byte from the client (since it connected, or its last one) and none of ours sent to it (its
        last answer long out, or one it reads nothing of: its window stays shut). The kernel's
        clock, not a look of ours: an answer it holds may be read slowly long after the panel wrote
        it (that is a download going on). Not while the panel works on a request (a slow export
        sends nothing for seconds), unless the kernel still holds answers the client has not taken:
        a client that pipelines and reads nothing has the panel answer its next request each time
        the kernel's send buffer grows, and that work only adds to a pile nobody reads. Never
        without TCP_INFO (not Linux)."""
        sock = self._socket()
        if self.phase() == HANDLING and not tcpinfo.unsent_bytes(sock):
            return False
        quiet = tcpinfo.quiet_ms(sock)
        return quiet is not None and quiet >= seconds * 1000

    def request_late(self, seconds: float, bodies: bool = True) -> bool:
        """Whether the client began its request `seconds` ago or more (on TLS, for the first one,
        its handshake) and it is not whole yet, head or body: a browser sends a panel form at once.
        Not the head alone: a client that sent a whole head and then a byte of its body every
        0.4 s was never idle either, and two dozen of them kept an office out as trickled heads had.
        With `bodies` False, only a head not whole."""
        coming = (h11.IDLE, h11.SEND_BODY) if bodies else (h11.IDLE,)
        if self.phase() not in (HANDSHAKE, REQUEST) or self.conn.their_state not in coming:
            return False
        if self._tls is not None and not self._answered and self._tls.heard_at is not None:
            began: float | None = self._tls.heard_at
        else:
            began = self._heard_at if self._heard else None
        return began is not None and self.loop.time() - began >= seconds

    def age(self) -> float:
        return self.loop.time() - self._opened_at

    def in_use(self, seconds: float) -> bool:
        """Whether a client is using this keep-alive connection between two of its requests: it has
        had an answer and taken it whole (the kernel holds nothing of ours unsent), has sent nothing
        of the next yet, and data moved on it within `seconds`, as the kernel has seen it. A browser
        sends its next request (a page's images, a form it was just given) milliseconds after the
        answer, and it was closed in between. Not while the client still reads the answer: one
        reading pipelined pages at a trickle kept its data moving for as long as it liked, and
        closing such a connection costs its client nothing (the kernel still sends what it holds
        after the close). Never without TCP_INFO (not Linux): every such connection stays expendable."""
        if not self._answered or self._spoke() or self.phase() != REQUEST:
            return False
        sock = self._socket()
        quiet = tcpinfo.quiet_ms(sock)
        return quiet is not None and quiet < seconds * 1000 and tcpinfo.unsent_bytes(sock) == 0

    def _spoke(self) -> bool:
        """Whether the client sent a byte of its current request (on TLS, of its handshake)."""
        return self._heard or (self._tls is not None and self.transport is None and self._tls.heard)

    def _stalled(self) -> bool:
        """The client acknowledged nothing of ours for `request_seconds` (it reads nothing). Without
        TCP_INFO (not Linux) never: a slow reader is no reason to cut a download."""
        acked = tcpinfo.bytes_acked(self._socket())
        if acked is None:
            return False
        now = self.loop.time()
        if acked != self._acked:
            self._acked, self._moved_at = acked, now
            return False
        return now - self._moved_at >= self.gate.limits.request_seconds

    def _socket(self) -> Any:
        return self._raw.get_extra_info("socket") if self._raw is not None else None

    def abort(self) -> None:
        """The socket's own transport: the TLS layer's `abort` does nothing once it has been closed
        twice (uvicorn does), and the raw transport takes the TLS layer down with it."""
        if self._raw is not None:
            self._raw.abort()

    def _buffered(self) -> int:
        """Bytes not yet handed to the kernel. The TLS layer holds back only what the socket's
        transport, then itself above its high-water mark, cannot take: so this counts them too."""
        return self._raw.get_write_buffer_size() if self._raw is not None else 0

    def _gone(self) -> None:
        self._ended = True
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.gate.release(self)

    def _arm(self, seconds: float | None = None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._given = delay = self.gate.limits.request_seconds if seconds is None else seconds
        self._stalled()  # a look at the client's progress: the deadline compares against it
        self._deadline = self.loop.call_later(delay, self._deadline_passed)

    def _begin_close(self) -> None:
        if self._closing_since is None and self._raw is not None:
            self._closing_since = self.loop.time()
            self._arm(min(CLOSE_NOTIFY_SECONDS, self.gate.limits.request_seconds))

    def _deadline_passed(self) -> None:
        """The client has kept the connection waiting for as long as it may: close it. One whose
        request is in is left to the app, however long it takes (a CSV export), and looked at
        again a deadline later; its answer, once written, re-arms the deadline."""
        self._deadline = None
        if self._ended:  # refused over its address's share (`data_received`), its answer long out
            self.abort()
            return
        phase = self.phase()
        if phase == HANDLING:
            self._arm()
        elif phase == CLOSING:
            self._closing()
        elif phase == WRITING:
            if not self._stalled():
                self._arm()  # reading, however slowly: looked at again a deadline later
                return
            self.gate.bite("write_time", address=self._address, seconds=self.gate.limits.request_seconds)
            self.abort()
        elif self._spoke():
            self.gate.bite("request_time", address=self._address, seconds=self._given)
            self.abort()
        else:  # never a byte: a browser's spare connection, or a keep-alive one it no longer needs
            log.debug("web.idle_closed", address=self._address, phase=phase, seconds=self._given)
            self.abort()

    def _closing(self) -> None:
        """Closing, and the client has all we sent (on TLS our close_notify too): its answer to that
        is not worth a descriptor, so the connection ends here. Still draining after the deadline:
        a client that does not read what it asked for."""
        if self._closing_since is None:
            self._begin_close()
            return
        if not self._buffered():
            log.debug("web.close_unanswered", address=self._address)
            self.abort()
        elif self._stalled():
            self.gate.bite("write_time", address=self._address, seconds=self.gate.limits.request_seconds)
            self.abort()
        else:
            self._arm(CLOSE_NOTIFY_SECONDS)
