"""What the simulator's SMPP and CIMD2 servers share around their wire formats: a session's life (its
background tasks, and on close handing every MO part or report the client never acknowledged back to
the core, so that the next login gets it as it would from an SMSC), a listener's session registry, MO
reference counter, the recent parts received and change signal, and `wait_until`, which lets tests and
fakes wait for a condition instead of sleeping.

A client that floods requests and never reads our answers would grow the transport's write buffer
without bound (the simulator runs inside the daemon): past `smsc.backpressure`'s limit unread, a session
reads nothing more until they drain (the client's flood waits in TCP), and one whose answers do not
drain within `ServerBase.drain_timeout` is dropped, its unsent bytes with it, as the gateway's links
drop such an SMSC. A close gives the client `ServerBase.goodbye_timeout` to read what is left: the
flush of a client that reads nothing held the session, and the simulator's stop, for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import structlog

from smsc.backpressure import drained, overfull
from smsc.logthrottle import LogThrottle
from smsc.simulator.core import SimulatorCore, SubmittedSms, keep_recent
from smsc.tls import close_once

log = structlog.get_logger(__name__)


async def wait_until(
    changed: asyncio.Event, predicate: Callable[[], bool], timeout: float, *, poll: float | None = None
) -> None:
    """Wait until `predicate()` holds, re-checked whenever `changed` is set and, with `poll`, also every
    `poll` seconds (for conditions that change without a signal). `timeout` is only a hang guard."""
    async with asyncio.timeout(timeout):
        while not predicate():
            changed.clear()
            if poll is None:
                await changed.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), poll)


class SessionBase:
    """One client connection, whatever the protocol; subclasses implement the core's `SimSession`."""

    protocol = ""

    def __init__(
        self, server: ServerBase, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.core: SimulatorCore = server.core
        self.reader, self.writer = reader, writer
        self.system_id = ""
        self.closed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        # What a client can repeat per PDU (garbage, unknown commands, bad logins, stray answers):
        # one line a second per kind, the rest counted, as the gateway's links log an SMSC's floods.
        self.warn = LogThrottle(log)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` for as long as the session lives (close cancels it)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def hold(self, key: tuple[Any, ...]) -> None:
        """Give an MO part ("part", what `send_part` takes) or a report ("report", message_id, status)
        the client did not take back to the core, which delivers it after the next login."""
        if key[0] == "part":
            self.core.hold_part(self.protocol, key[1])
        else:
            self.core.hold_report(*key[1:])

    def taken(self, key: tuple[Any, ...]) -> None:
        """The client acknowledged the delivery `key` names, or the session gave up on it after its
        attempts: a report is then no longer owed (a later start would send it again)."""
        if key[0] == "report":
            self.core.report_taken(key[1], key[2])

    async def run(self) -> None:
        """Read and answer the client until it goes away, then `close`."""
        raise NotImplementedError

    def overfull(self) -> bool:
        """More of our answers unread than the session keeps: `run` must wait for them to drain."""
        return overfull(self.writer)

    async def drained(self) -> bool:
        """Wait (reading nothing) until our answers drain; False, and the connection aborted, when they
        do not within the server's `drain_timeout`: a client that will not read is dropped."""
        event, error = f"sim.{self.protocol}.peer_not_reading", "the client is not reading our answers"
        if await drained(
            self.writer, self.server.drain_timeout, event, system_id=self.system_id, error=error
        ):
            return True
        self.writer.transport.abort()
        return False

    def take_unacknowledged(self) -> Iterable[tuple[Any, ...]]:
        """Stop every delivery in progress and return the `hold` keys of those not acknowledged."""
        return ()

    async def goodbye(self) -> None:
        """End the session as the protocol asks of an SMSC that shuts down (SMPP: unbind), waiting
        at most `ServerBase.goodbye_timeout` for the client; `close` follows."""

    async def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self.warn.flush()
        self.core.unregister(self)  # type: ignore[arg-type]  # each subclass is a SimSession
        for key in self.take_unacknowledged():
            self.hold(key)
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        self.writer.close()
        try:
            async with asyncio.timeout(self.server.goodbye_timeout):
                await self.writer.wait_closed()
        except TimeoutError:  # the flush waits for a client that reads nothing: it would hold `stop` for ever
            self.writer.transport.abort()
        except Exception:  # the connection was lost: nothing is left to flush
            pass


class ServerBase:
    """A listener and its bookkeeping: the live sessions, the MO concatenation reference, what was
    received and a signal for `wait_until` callers."""

    session_class: type[SessionBase] = SessionBase
    received: list[SubmittedSms]  # the last MAX_RECORDS parts taken, in order (`keep_recent`)

    def __init__(self, core: SimulatorCore, host: str, port: int) -> None:
        self.core = core
        self.host, self.port = host, port
        self.sessions: set[SessionBase] = set()
        self.listener: asyncio.Server | None = None
        # Seconds a client has to answer our goodbye, and to read what is left at a close.
        self.goodbye_timeout = 2.0
        self.drain_timeout = 10.0  # seconds a client may leave over the limit unread: then dropped
        self._handlers: set[asyncio.Task[Any]] = set()  # one per connection, running `session.run`
        self._ref = 0
        self._changed = asyncio.Event()
        self.received_total = 0  # every part taken: what waits for a count beyond the kept ones reads
        self.tls: ssl.SSLContext | None = None  # set before `start`: the port then speaks TLS only

    async def start(self) -> asyncio.Server:
        self.listener = await asyncio.start_server(self._on_connect, self.host, self.port, ssl=self.tls)
        self.port = self.listener.sockets[0].getsockname()[1]
        log.info(f"sim.{self.session_class.protocol}.listening", host=self.host, port=self.port,
                 tls=self.tls is not None)  # fmt: skip
        return self.listener

    async def stop(self) -> None:
        """Say goodbye to every client, close the connections and wait until each connection's
        handler has ended: one still running when the event loop closes is cancelled there, which
        asyncio's stream code reports as an "Exception in callback" (Python < 3.13)."""
        if self.listener is not None:
            self.listener.close()
        sessions = list(self.sessions)
        await asyncio.gather(*(self._goodbye(s) for s in sessions), return_exceptions=True)
        await self.close_sessions()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=self.goodbye_timeout)
        if self.listener is not None:
            await self.listener.wait_closed()
            self.listener = None

    async def _goodbye(self, session: SessionBase) -> None:
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(self.goodbye_timeout):
                await session.goodbye()

    async def close_sessions(self) -> None:
        for session in list(self.sessions):
            await session.close()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.tls is not None:
            close_once(writer)  # a session closes its connection more than once
        session = self.session_class(self, reader, writer)
        self.sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            self._handlers.discard(task)  # type: ignore[arg-type]

    def next_ref(self) -> int:
        self._ref = (self._ref + 1) % 256
        return self._ref

    def record(self, sms: SubmittedSms) -> None:
        keep_recent(self.received, sms)
        self.received_total += 1
        self.changed()

    def changed(self) -> None:
        """Wake `wait_until` callers: something a test may be waiting on changed."""
        self._changed.set()
