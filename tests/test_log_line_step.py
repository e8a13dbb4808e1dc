"""The JSON log line is rendered in one step (`gateway.logging._json_line`) that must write what the
separate processors it replaced wrote, field for field and in the same order: the context's fields,
the level (`warn` and `exception` mapped as structlog maps them), the time stamp, the redaction, an
exception's text."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, merge_contextvars

from gateway import logging as glog
from gateway import logsink
from gateway.logging import _json_line, _redact

CHAIN = [
    merge_contextvars,
    structlog.processors.add_log_level,
    logsink.stamp_iso_utc,
    _redact,
    structlog.processors.format_exc_info,
    structlog.processors.JSONRenderer(serializer=logsink.dumps),
]


def chained(name: str, event: dict[str, Any]) -> Any:
    for step in CHAIN:
        event = step(None, name, event)
    return event


@pytest.fixture
def fixed_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(logsink.time, "time_ns", lambda: 1_700_000_000_123_456_000)
    bind_contextvars(conn="c1", text="the SMS")
    yield
    clear_contextvars()


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("info", {"event": "message.state", "message": 5, "state": "delivered"}),
        ("warn", {"event": "x", "password": "p", "conn": "own"}),
        ("exception", {"event": "y", "exc_info": True}),
        ("error", {"event": "z", "exc_info": ValueError("bad")}),
        ("debug", {"event": "w", "exc_info": False}),
    ],
)
@pytest.mark.usefixtures("fixed_time")
def test_one_step_writes_what_the_processors_wrote(name: str, event: dict[str, Any]) -> None:
    try:
        raise ZeroDivisionError("in flight")
    except ZeroDivisionError:
        one, steps = _json_line(None, name, dict(event)), chained(name, dict(event))
    assert one == steps
    assert b'"text":"[redacted]"' in one and b'"timestamp":"2023-11-14T22:13:20.123456Z"' in one


@pytest.mark.usefixtures("fixed_time")
def test_no_context_variable_bound_the_line_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no structlog context variable exists (the daemon's main process), the merge is skipped."""
    clear_contextvars()
    monkeypatch.setattr("gateway.logging._BOUND_VARS", {})
    event = {"event": "message.state", "message": 5, "state": "delivered"}
    assert _json_line(None, "info", dict(event)) == chained("info", dict(event))


@pytest.mark.usefixtures("fixed_time")
def test_level_methods_write_what_structlog_wrote() -> None:
    """The JSON chain's level methods (`_fast_method`) write the lines structlog's own methods write
    through the chain: the bound context, then the call's fields, then the event; a %-format too."""
    out = io.BytesIO()
    sink = logsink.LineSink(io.TextIOWrapper(out))
    log = structlog.wrap_logger(
        logsink.SinkLogger(sink),
        processors=glog._JSON_CHAIN,
        wrapper_class=glog._wrapper_class(logging.DEBUG),
    ).bind(link="l1", part=3)
    slow = structlog.make_filtering_bound_logger(logging.DEBUG)
    assert type(log) is not slow
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("info", ("message.state",), {"message": 5, "state": "delivered"}),
        ("msg", ("m",), {"part": 4}),
        ("debug", ("d",), {"text": "the SMS", "smsc_id": "261205194652:48601123456"}),
        ("warning", ("w",), {"password": "p"}),
        ("warn", ("w2",), {}),
        ("error", ("e",), {"error": "bad", "exc_info": ValueError("x")}),
        ("critical", ("c",), {}),
        ("fatal", ("f",), {}),
        ("exception", ("x",), {}),
        ("info", ("%s of %d", "a", 2), {"n": 1}),
    ]
    for method, args, kw in calls:
        for cls in (type(log), slow):
            getattr(cls, method)(log, *args, **dict(kw))
    sink.flush()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 * len(calls)
    for fast_line, slow_line in zip(lines[::2], lines[1::2], strict=True):
        assert fast_line == slow_line
    first = b'{"link":"l1","part":3,"message":5,"state":"delivered","event":"message.state",'
    assert lines[0].startswith(first)
