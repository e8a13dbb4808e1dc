"""Structured logs: JSON lines under systemd (or any non-terminal), readable output on a terminal.

A redaction step replaces the value of any field whose name suggests a secret, so that a careless
`log.info(..., password=...)` can never put a credential into the journal, and of any field named
like a message text (`text=`, `body=`): SMS and mail contents belong to their senders, not to the
journal. (Summaries such as a CIMD2 packet's `describe()` leave the text out themselves.)
Known secrets are masked within the fields that carry a peer's words (`error=`, `reply=`, a
traceback...: `_WORDS_KEYS`), where no test of the name can hide them: while the outbox worker
runs, the relay password as typed and in base64, which a relay may echo in any reply
(`hide_values`). Those fields alone, not every value: a scan of every value cost each line a
third more, and the relay's replies come in those fields.

A process killed in the middle of a write (SIGKILL, OOM) leaves its last line without a newline
in a log file opened for appending; the next start first ends that line, so that its own first
line does not merge with it and every line stays one JSON object.

Logging is on the hot path of every mail, so it is made cheap (gateway.logsink): lines are
rendered by orjson, and lines logged on the event loop below WARNING are written once per loop
turn in one write instead of one write each. A warning or error is written at once together
with whatever is pending, as is every line logged where no event loop runs; at exit the rest is
written. A SIGKILL can therefore lose at most the INFO/DEBUG lines of the loop turn it
interrupts (a few milliseconds), never a warning or an error.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog
from structlog.contextvars import merge_contextvars
from structlog.processors import format_exc_info

from gateway import logsink
from gateway.secretmask import masked
from gateway.tornline import end_torn_line

_SECRET_KEYS = ("password", "secret", "token", "auth_data", "passwd")
# Whole names only: a substring test would also hide `context=` or `error_text=`.
_TEXT_KEYS = frozenset(
    {"text", "body", "subject", "short_message", "message_payload", "user_data", "payload"}
)


# The verdict per field name, remembered: the names come from the code, so the set stays small, and
# every log line pays a dictionary look-up per field instead of a lower() and five substring tests.
_VERDICTS: dict[str, bool | str] = {}
_MAX_VERDICTS = 4096  # a bound all the same, should names ever come from input


# A CIMD2 SMSC's message id is its time stamp and the phone's number ("261205194652:48601123456"):
# logged whole, a receipt's line kept a number `smsgw phone forget` cannot erase. The stamp stays,
# whatever it is: a run of digits after an id's last ':' is masked (only a stamp of 12 digits was,
# and an SMSC whose 060 has 14, or 10, or none had every phone of its receipts logged). Only digits:
# an SMPP SMSC's id ("msg:0A1B2C3D") or an e-mail's Message-ID ("<a@[IPv6:2001:db8::1]>") names no
# phone, and masked whole after its last ':' it could no longer be found in the log.
_ID_KEYS = frozenset({"smsc_id", "message_id", "receipt_id"})
_PHONE_IN_ID = re.compile(r"(?<=:)\+?\d{5,}(?=:?\Z)")
_ID = "id"  # the verdict of an id field: its number masked (compared by ==, before truth)
# Fields holding a peer's words (a relay's reply, an error's repr): known secrets masked in them.
_WORDS_KEYS = frozenset(
    {"error", "reply", "reason", "detail", "why", "said", "answer", "cause", "response", "message"}
    | {"exception"}  # a traceback's text, of a line logged with its exception
)
_WORDS = "words"  # the verdict of such a field (compared by ==, as _ID)


# The secrets' forms (`gateway.secretmask.secret_forms`) masked in the _WORDS_KEYS fields, by owner:
# the outbox worker while it runs. Empty, such a field pays one truth test of a tuple.
_HIDDEN_BY: dict[int, tuple[str, ...]] = {}
_HIDDEN: tuple[str, ...] = ()


def hide_values(owner: object, forms: tuple[str, ...]) -> None:
    """Masks `forms` in the fields of a peer's words, for `owner` until it hands in none (each
    owner's forms replace its own before)."""
    global _HIDDEN
    if forms:
        _HIDDEN_BY[id(owner)] = forms
    else:
        _HIDDEN_BY.pop(id(owner), None)
    _HIDDEN = tuple(sorted({f for fs in _HIDDEN_BY.values() for f in fs}, key=len, reverse=True))


def _masked_after_format(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A traceback's text (`exception`), rendered after `_redact` ran, masked as the other words."""
    if _HIDDEN and isinstance(text := event.get("exception"), str):
        event["exception"] = masked(text, _HIDDEN)
    return event


def _masked_rendered(_logger: Any, _name: str, line: Any) -> Any:
    """The console's line, masked whole after its renderer: the console renders a traceback itself
    (`ConsoleRenderer`'s exception formatter), so no field holds its text before, and a relay's
    reply echoing the password in an exception's message reached a terminal's `smsgw run` as it
    was. Whole lines cost nothing here: the console is for a person watching, not for volume."""
    return masked(line, _HIDDEN) if _HIDDEN and isinstance(line, str) else line


def _hidden(key: str) -> bool | str:
    lowered = key.lower()
    if lowered in _ID_KEYS:
        return _ID
    if lowered in _TEXT_KEYS or any(s in lowered for s in _SECRET_KEYS):
        return True
    return _WORDS if lowered in _WORDS_KEYS or lowered.endswith(("_error", "_reply")) else False


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    verdicts = _VERDICTS
    for key in event:  # values only are replaced: iterating while doing so is safe
        hide = verdicts.get(key)
        if hide is None:
            hide = _hidden(key)
            if len(verdicts) < _MAX_VERDICTS:
                verdicts[key] = hide
        if not hide:
            continue
        if hide == _ID:
            value = event[key]
            if isinstance(value, str) and ":" in value:
                event[key] = _PHONE_IN_ID.sub("…", value, count=1)
        elif hide == _WORDS:
            if _HIDDEN and isinstance(value := event[key], str):
                event[key] = masked(value, _HIDDEN)
        else:
            event[key] = "[redacted]"
    return event


# structlog's context variables by name, made by the first `bind_contextvars` of each: while it is
# empty `merge_contextvars` (a copy of the whole context, some 2 k instructions a line) finds none.
# A structlog without it: merged at every line, as before.
_BOUND_VARS: dict[str, Any] = getattr(structlog.contextvars, "_CONTEXT_VARS", {"": None})
_LEVEL_NAMES = {"warn": "warning", "exception": "error"}  # structlog's `add_log_level` mapping


def _json_line(logger: Any, name: str, event: MutableMapping[str, Any]) -> bytes:
    """The JSON chain's steps as one: the context's fields, the level, the time stamp, the
    redaction, an exception's text and the rendering, in that order, as the processors
    `merge_contextvars`, `add_log_level`, `stamp_iso_utc`, `_redact`, `format_exc_info` and the
    JSON renderer would run them. Each processor is a call of structlog's chain of its own, and
    the daemon writes a line at INFO for every mail."""
    if _BOUND_VARS:  # no structlog context variable exists until one is bound (the intake worker's)
        event = merge_contextvars(logger, name, event)
    event["level"] = _LEVEL_NAMES.get(name, name)
    event["timestamp"] = logsink.iso_utc(time.time_ns())
    event = _redact(logger, name, event)
    if "exc_info" in event:
        event = _masked_after_format(logger, name, format_exc_info(logger, name, event))
    return logsink.dumps(event)


# The JSON chain's one processor, as configured: a logger whose processors are this list renders its
# lines by `_fast_method`; any other (a test's `capture_logs`, the console) goes through structlog.
_JSON_CHAIN: list[Any] = [_json_line]
_METHOD_NAMES = {"debug": "debug", "info": "info", "msg": "info", "warning": "warning", "warn": "warning"}
_METHOD_NAMES |= {"error": "error", "critical": "critical", "fatal": "critical"}
_FAST_CLASSES: dict[int, type] = {}


def _fast_method(name: str, slow: Any) -> Any:
    """structlog's level method for the JSON chain in one call: `meth` → `_proxy_to_logger` →
    `_process_event` each repacked the fields and ran the chain through a loop and type tests, some
    18 k instructions a line (a line at INFO is logged for every mail). The same dict (the bound
    context, then the call's fields, then the event) goes to `_json_line`, its bytes to the logger."""

    def meth(self: Any, event: str | None, *args: Any, **kw: Any) -> Any:
        if args or self._processors is not _JSON_CHAIN:  # a %-format's arguments: structlog's own way
            return slow(self, event, *args, **kw)
        context = self._context
        event_dict = {**context, **kw} if context else kw
        if event is not None:
            event_dict["event"] = event
        logger = self._logger
        return getattr(logger, name)(_json_line(logger, name, event_dict))

    meth.__name__ = name
    return meth


def _wrapper_class(level: int) -> type:
    """structlog's filtering bound logger for `level`, its enabled methods given `_fast_method`."""
    if (cls := _FAST_CLASSES.get(level)) is None:
        base = structlog.make_filtering_bound_logger(level)
        methods = {
            attr: _fast_method(name, getattr(base, attr))
            for attr, name in _METHOD_NAMES.items()
            if getattr(logging, name.upper()) >= level
        }
        cls = _FAST_CLASSES[level] = type(base.__name__, (base,), methods)
    return cls


def filter_once(name: str, kind: type[logging.Filter]) -> None:
    """Add a `kind` filter to the standard logger `name` (aiosmtpd's "mail.log") unless it has one.

    A filter acts in the process that added it only, so each process that serves a listener adds
    its own when it starts serving; and a daemon may start its listeners again, which must not add
    a second (each record would pass through it twice)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, kind) for f in logger.filters):
        logger.addFilter(kind())


def configure(*, json: bool | None = None, level: str = "INFO") -> None:
    if json is None:
        json = not sys.stderr.isatty()
    end_torn_line(sys.stderr)
    sink = logsink.new_sink(sys.stderr)
    renderer: Any = structlog.dev.ConsoleRenderer()
    chain: list[Any] = (
        _JSON_CHAIN
        if json
        else [
            merge_contextvars,
            structlog.processors.add_log_level,
            logsink.stamp_iso_utc,
            _redact,
            structlog.processors.StackInfoRenderer(),
            renderer,
            _masked_rendered,
        ]
    )
    structlog.configure(
        processors=chain,
        wrapper_class=_wrapper_class(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=lambda *_args: logsink.SinkLogger(sink),
        cache_logger_on_first_use=True,  # resolve each module logger once, not on every call
    )
    logsink.bind_module_loggers()
    # Libraries that use the stdlib logger (aiosmtpd, smpplib, apscheduler, asyncio's own "exception
    # never retrieved" reports) go through the same processors and renderer at WARNING and above, so
    # that a JSON log stays one JSON object per line and carries no text or secret unredacted.
    handler = logsink.SinkHandler(sink)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                logsink.stamp_iso_utc,
                _redact,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info if json else structlog.processors.StackInfoRenderer(),
                _masked_after_format,
                structlog.processors.JSONRenderer(serializer=logsink.dumps_str) if json else renderer,
                _masked_rendered,
            ],
        )
    )
    handler.set_name("smsgw")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "smsgw":  # configured before (tests start several daemons in one process)
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


# A command other than `run` logs at this level and above unless `smsgw --log-level` asks for more.
CLI_LOG_LEVEL = "WARNING"


@contextmanager
def cli_console(level: str = CLI_LOG_LEVEL) -> Iterator[None]:
    """The log lines of a CLI command, while it runs: on stderr, WARNING and above by default.

    Unconfigured, structlog printed every INFO line (store.migrated, premium.verification_sent) to
    stdout among the command's own output, stamped in UTC beside listings in the gateway's zone;
    what a command did it says in its own words. Warnings stay, redacted as the daemon's. The
    previous configuration comes back at the end (tests run many commands in one process).
    """
    saved = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            _redact,
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.WARNING)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**saved)
