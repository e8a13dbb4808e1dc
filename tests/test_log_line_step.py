"""The JSON log line is rendered in one step (`gateway.logging._json_line`) that must write what the
separate processors it replaced wrote, field for field and in the same order: the context's fields,
the level (`warn` and `exception` mapped as structlog maps them), the time stamp, the redaction, an
exception's text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, merge_contextvars

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
