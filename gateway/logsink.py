"""The cheap parts of logging: rendering, time stamps, buffered writes and resolved module loggers.

At the production default (INFO) every mail, SMS and delivery report costs log lines, and the
daemon's one event-loop thread is the bottleneck, so each step here is the cheap equivalent of a
structlog default with the same output:
- `dumps`: orjson instead of the json module; values orjson would render differently from before
  (dataclasses, datetimes) still go through `repr`, and anything orjson refuses (lone surrogates
  from 8-bit SMTP input, integers beyond 64 bits) falls back to the json module; what neither
  writes (a tuple as a key, a field holding itself) is written as its repr, keys included.
- `stamp_iso_utc`: structlog's `TimeStamper(fmt="iso", utc=True)` text, with the date and time
  formatted once per second instead of once per line.
- `LineSink`: lines logged on the event loop below WARNING are joined and written once per loop
  turn (or every `max_pending` lines); a warning or error, or any line logged where no loop runs,
  is written at once after what is pending, so that order is kept and nothing important waits.
  Inside `written_at_once()` (the daemon's start, which never yields to the loop while it checks
  and upgrades its database) every line is written at once: buffered, a start's lines appeared
  only when the loop first turned, and a start killed before that left none, not even of the
  migrations it had committed.
- `bind_module_loggers`: structlog's lazy proxy resolves its logger on every attribute access
  (about 3 µs per call, even for a DEBUG call that is filtered out); after configuration the
  modules' `log` attributes are replaced by the loggers the proxies stand for.
"""

from __future__ import annotations

import asyncio
import atexit
import json as jsonlib
import logging
import sys
import threading
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import orjson
import structlog

_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
# The fallback for what orjson refuses; `json.dumps` with a `default=` builds an encoder per call.
_ENCODE = jsonlib.JSONEncoder(default=repr).encode


def dumps(event: Any, **_kw: Any) -> bytes:
    """One log line's JSON as bytes (what `LineSink` writes)."""
    try:
        return orjson.dumps(event, default=repr, option=_OPTIONS)
    except orjson.JSONEncodeError:
        pass
    try:
        return _ENCODE(event).encode("utf-8")
    except Exception:
        # A key JSON has no form for (a tuple), a field that holds itself, a repr that raises: the
        # line is written with such parts as text, since a log call that raised would end the work
        # it was only reporting on.
        try:
            return _ENCODE(_encodable(event, set())).encode("utf-8")
        except RecursionError:  # nested deeper than the interpreter's stack: each field as its text
            flat = {
                k if isinstance(k, str) else _text(k): v if v is None or isinstance(v, _KEYS) else _text(v)
                for k, v in dict(event).items()
            }
            return _ENCODE(flat).encode("utf-8")


_KEYS = (str, int, float, bool)


def _text(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__} without a repr>"


def _encodable(value: Any, inside: set[int]) -> Any:
    """`value` with every key the json module refuses, and every value it cannot write, as its repr."""
    if value is None or isinstance(value, _KEYS):
        return value
    if not isinstance(value, (dict, list, tuple)):
        return _text(value)
    if id(value) in inside:
        return _text(value)  # a container within itself: repr writes the inner one as {...} or [...]
    inside.add(id(value))
    try:
        if isinstance(value, dict):
            return {
                key if key is None or isinstance(key, _KEYS) else _text(key): _encodable(item, inside)
                for key, item in value.items()
            }
        return [_encodable(item, inside) for item in value]
    finally:
        inside.discard(id(value))


def dumps_str(event: Any, **_kw: Any) -> str:
    """The same JSON as text, for the stdlib logging formatter, which must return a string."""
    return dumps(event).decode("utf-8")


class _Stamp:
    """The ISO date and time of the current second, remembered until the second changes."""

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""


_STAMP = _Stamp()


def iso_utc(ns: int) -> str:
    """`datetime.fromtimestamp(ns / 1e9, UTC).isoformat()` with `Z` for `+00:00`, truncated to µs."""
    second, rest = divmod(ns, 1_000_000_000)
    stamp = _STAMP
    if second != stamp.second:
        stamp.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        stamp.second = second
    micro = rest // 1000
    return f"{stamp.prefix}.{micro:06d}Z" if micro else f"{stamp.prefix}Z"  # as isoformat() omits .000000


def stamp_iso_utc(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["timestamp"] = iso_utc(time.time_ns())
    return event


class LineSink:
    """Where rendered lines go: one stream, written in batches from the event loop (see module doc)."""

    def __init__(self, stream: TextIO, max_pending: int = 256) -> None:
        self.stream = stream
        self.binary = getattr(stream, "buffer", None)  # write bytes straight through when there is one
        self.max_pending = max_pending
        self._pending: list[bytes] = []
        self._scheduled: asyncio.AbstractEventLoop | None = None  # where a flush is due
        self._lock = threading.Lock()  # lines may come from other threads (the fsync thread, executors)
        self.at_once = False  # every line written when logged (`written_at_once`)

    def line(self, rendered: str | bytes) -> None:
        """A line that may wait until the end of this loop turn (on the loop's thread only)."""
        data = rendered.encode("utf-8") if isinstance(rendered, str) else rendered
        loop = asyncio._get_running_loop()  # the C accessor: get_running_loop() raises without one
        with self._lock:
            self._pending.append(data + b"\n")
            if loop is not None and not self.at_once and len(self._pending) < self.max_pending:
                if self._scheduled is not loop:  # a loop that stopped before its turn ended is forgotten
                    self._scheduled = loop
                    loop.call_soon(self.flush)
                return
        self.flush()

    def line_now(self, rendered: str | bytes) -> None:
        """A warning or error: written at once, after the lines logged before it."""
        data = rendered.encode("utf-8") if isinstance(rendered, str) else rendered
        with self._lock:
            self._pending.append(data + b"\n")
        self.flush()

    def flush(self) -> None:
        with self._lock:
            self._scheduled = None
            if not self._pending:
                return
            data = b"".join(self._pending)
            self._pending.clear()
            try:
                if self.binary is not None:
                    self.binary.write(data)
                    self.binary.flush()
                else:
                    self.stream.write(data.decode("utf-8", "replace"))
                    self.stream.flush()
            except (OSError, ValueError):
                pass  # stderr closed or gone: nowhere left to report it, and logging must not kill work


class SinkLogger:
    """structlog's logger interface over a `LineSink`: the method name carries the level."""

    def __init__(self, sink: LineSink) -> None:
        self._sink = sink
        self.debug = self.info = self.msg = sink.line
        self.warning = self.warn = self.error = self.critical = self.exception = self.fatal = sink.line_now
        self.failure = self.err = sink.line_now


class SinkHandler(logging.Handler):
    """The stdlib handler for library records (WARNING and above), written through the same sink."""

    def __init__(self, sink: LineSink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.line_now(self.format(record))
        except Exception:
            self.handleError(record)


_current: LineSink | None = None


def _flush_current() -> None:
    if _current is not None:
        _current.flush()


atexit.register(_flush_current)


def new_sink(stream: TextIO) -> LineSink:
    """A sink for `stream` in place of the last one (whose pending lines are written now); what is
    pending in it is written at exit."""
    global _current
    _flush_current()
    _current = LineSink(stream)
    return _current


@contextmanager
def written_at_once() -> Iterator[None]:
    """Every line logged inside is written before the call that logged it returns (see module doc)."""
    sink = _current
    if sink is None:
        yield
        return
    sink.flush()
    was, sink.at_once = sink.at_once, True
    try:
        yield
    finally:
        sink.at_once = was


_PACKAGES = ("gateway", "smsc", "acl", "billing_reports")
# module name -> (attribute, the module's own lazy proxy), kept to bind again on a new configuration
_PROXIES: dict[str, tuple[str, Any]] = {}


def bind_module_loggers() -> int:
    """Replace each loaded module's `log = structlog.get_logger(...)` proxy by its bound logger."""
    count = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".", 1)[0] not in _PACKAGES:
            continue
        proxy: Any
        if name in _PROXIES:
            attr, proxy = _PROXIES[name]
        else:
            proxy = getattr(module, "log", None)
            if not isinstance(proxy, structlog._config.BoundLoggerLazyProxy):
                continue
            attr = "log"
            _PROXIES[name] = (attr, proxy)
        fresh = structlog.get_logger(*proxy._logger_factory_args, **(proxy._initial_values or {}))
        setattr(module, attr, fresh.bind())  # a fresh proxy: the old one may have cached the old setup
        count += 1
    return count
