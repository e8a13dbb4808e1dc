"""The channel between the daemon and an intake worker: framed messages and the writes sent over it.

One socketpair per worker carries length-prefixed frames: a 4-byte body length, a kind byte,
the payload. Writes (requests and their answers) carry a 4-byte request id, because a worker has
many SMTP sessions with a write in flight at once and the daemon answers each as its group commit
is on disk, in whatever order that happens.

worker → daemon: `R` serving; `h{json}` heartbeat, once a second, with the reply codes counted
since the last one; `w<id><pickle>` a write: (operation name, arguments), an acceptance as
`w<id>A<marshal>` (`gateway.intake_wire`); `x<id>` the write `id`
asked back, its session's wait for it over (`gateway.intake_accepts`); `S` the worker got SIGTERM
(its end is then no crash to restart).
daemon → worker: `b<total> <everyone> <ids>` the queue backlog and the accounts the high-water
mark refuses (`gateway.queuedepth.Backlog.wire`); `g` begin accepting (after `R`, when the
other workers are ready too: `gateway.smtp.fairaccept.Release`); `q` stop;
`a<id><pickle>` the answer to write `id`: (True, result) or (False, the error to raise), an
acceptance's result as `a<id>R<marshal>`;
`x<id>` write `id` taken back before it ran (the client hears `451`; a write that ran is answered
with `a` as usual).

Why the worker does not write itself: two processes committing into one WAL file cost more CPU
than one (lock retries, page cache reloads after the other's commits, smaller batches), so the
worker keeps the SMTP sessions, MIME reading and composing, and the daemon runs every write in
its own group commit (fsync before it answers), which also wakes its dispatcher and outbox.
Only the named operations of `gateway.smtp.accept.Writes` cross the channel, never code. Store
errors come back as the same exception classes (with SQLite's error code, errno), so that the
SMTP replies (`451`, `452`, `421`) are those of the daemon's own relay port.
"""

from __future__ import annotations

import asyncio
import copyreg
import dataclasses
import errno as errno_mod
import io
import operator
import pickle
import sqlite3
import struct
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from acl.limits import Quota
from gateway import intake_wire
from gateway.conversations import Opening
from gateway.smtp.accept import Limits, Notice
from gateway.store.db import StoreBusy, StoreReplaced
from gateway.store.records import Acceptance, AcceptResult, NewMessage, NewPart
from smsc.makers import maker

log = structlog.get_logger(__name__)

HEADER = struct.Struct(">IB")  # body length (kind byte included), kind
REQUEST_ID = struct.Struct(">I")
MAX_FRAME = 1 << 28  # far above any mail (max_message_bytes); a longer length means a broken stream
PICKLE = pickle.HIGHEST_PROTOCOL


# The dataclasses of every write, pickled as constructor calls: slotted dataclasses otherwise go
# through Python-level __getstate__/__setstate__, which halves the speed on the daemon's busy loop.
# Each is rebuilt by `_build` and its index here, so that a pickle names one global however many
# classes it holds: every global costs both sides an import lookup (`find_class`, `save_global`),
# some eight of them per mail. A class not listed still pickles the usual way. The time zone of
# `Limits` is rebuilt the same way (by `ZoneInfo._unpickle`, as its own pickle would, the cache
# included), not by the two globals of its own pickle (`builtins.getattr` and the class).
_CLASSES: tuple[type, ...] = (Acceptance, NewMessage, NewPart, AcceptResult, Limits, Quota, Notice, Opening)
_ZONE = len(_CLASSES)


# What rebuilds each record from its fields' values without its __init__ (`smsc.makers.maker`).
_MAKERS: tuple[Callable[..., Any], ...] = (*map(maker, _CLASSES), ZoneInfo._unpickle)  # type: ignore[attr-defined]


def _build(index: int, *values: Any) -> Any:
    return _MAKERS[index](*values)


def _by_fields(index: int, cls: type) -> Callable[[Any], tuple[Callable[..., Any], tuple[Any, ...]]]:
    get = operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))
    return lambda obj: (_build, (index, *get(obj)))


def _zone(zone: ZoneInfo) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    _unpickle, args = zone.__reduce__()  # (key, whether from the cache)
    return (_build, (_ZONE, *args))


_REDUCERS = copyreg.dispatch_table.copy()
_REDUCERS.update({cls: _by_fields(index, cls) for index, cls in enumerate(_CLASSES)})
_REDUCERS[ZoneInfo] = _zone


_encode_accept, _decode_accept = intake_wire.codec(dict(zip(_CLASSES, _MAKERS, strict=False)))


def pack_request(request_id: int, value: Any) -> bytes:
    """A write or its answer: an acceptance and its answer in marshal's form (`gateway.intake_wire`),
    whatever else (or an acceptance that form would not carry exactly) pickled."""
    try:
        return REQUEST_ID.pack(request_id) + _encode_accept(value)
    except (intake_wire.Unfit, ValueError):
        pass
    out = io.BytesIO()
    out.write(REQUEST_ID.pack(request_id))
    pickler = pickle.Pickler(out, PICKLE)
    pickler.dispatch_table = _REDUCERS
    pickler.dump(value)
    return out.getvalue()


def unpack_request(payload: bytes) -> tuple[int, Any]:
    body = memoryview(payload)[REQUEST_ID.size :]
    value = _decode_accept(body) if body[0] in _WIRE_KINDS else pickle.loads(body)
    return REQUEST_ID.unpack_from(payload)[0], value


_WIRE_KINDS = (intake_wire.ACCEPT, intake_wire.RESULT)


class Framed(asyncio.Protocol):
    """Frames in (handed to `on_frame` as they complete) and out (coalesced to one write per loop turn)."""

    def __init__(self, on_frame: Callable[[int, bytes], None]) -> None:
        # Built before the connection exists: `on_frame` may name this object from the first frame on.
        self.on_frame = on_frame
        self.closed: asyncio.Future[None]  # done when the other side has gone; set by `open`
        self.transport: asyncio.Transport | None = None
        self._in = bytearray()
        self._out: list[bytes] = []

    async def open(self, sock: Any) -> None:
        loop = asyncio.get_running_loop()
        self.closed = loop.create_future()
        await loop.create_unix_connection(lambda: self, sock=sock)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, kind: bytes, payload: bytes = b"") -> bool:
        """Queue one frame; False if the other side is gone (the frame is dropped)."""
        if not self.is_open:
            return False
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(HEADER.pack(len(payload) + 1, kind[0]))
        self._out.append(payload)
        return True

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self.is_open:
            assert self.transport is not None
            self.transport.write(b"".join(out))

    def close(self) -> None:
        if self.transport is not None:
            self._flush()
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        buf = self._in
        buf += data
        start, end = 0, len(buf)
        while end - start >= HEADER.size:
            length, kind = HEADER.unpack_from(buf, start)
            if not 1 <= length <= MAX_FRAME:
                log.error("intake.channel_broken", length=length)
                assert self.transport is not None
                self.transport.close()
                return
            if end - start < HEADER.size - 1 + length:
                break
            body = start + HEADER.size
            start = body + length - 1
            self.on_frame(kind, bytes(buf[body:start]))
        del buf[:start]


# ---- errors across the channel ------------------------------------------------------------------


def error_to_wire(exc: BaseException) -> tuple[str, Any, Any]:
    """What the worker needs to raise the same error: its class (as a name) and its details."""
    if isinstance(exc, StoreReplaced):
        return ("replaced", str(exc), None)
    if isinstance(exc, StoreBusy):
        return ("busy", str(exc), None)
    if isinstance(exc, sqlite3.OperationalError):
        return ("sqlite", str(exc), getattr(exc, "sqlite_errorcode", None))
    if isinstance(exc, OSError):
        return ("os", exc.strerror or str(exc), exc.errno)
    return ("other", type(exc).__name__, None)


def error_from_wire(wire: tuple[str, Any, Any]) -> Exception:
    kind, message, code = wire
    if kind == "replaced":
        return StoreReplaced(message)
    if kind == "busy":
        return StoreBusy(message)
    if kind == "sqlite":
        exc = sqlite3.OperationalError(message)
        if code is not None:
            exc.sqlite_errorcode = code
        return exc
    if kind == "os":
        return OSError(code, message) if code is not None else OSError(message)
    return RuntimeError(f"the daemon failed the write ({message}); see its log")


GONE = ("os", "the daemon is gone", errno_mod.EPIPE)
