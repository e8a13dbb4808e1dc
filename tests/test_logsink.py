"""Cheap logging keeps the log's content and order: orjson lines read back as the json module's did,
the time stamp is structlog's ISO text, lines of one loop turn are written together after it, and
warnings, lines from outside a loop and the last lines before exit are never held back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.logsink import LineSink, dumps, iso_utc


class Stream:
    """A stream that records each write, as the sink sees stderr."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


@dataclasses.dataclass
class Part:
    id: int


def test_rendered_lines_read_back_as_before() -> None:
    event = {"event": "smtp.accepted", "email": 12, "ratio": 0.5, "ok": True, "none": None, 3: "x"}
    assert json.loads(dumps(event)) == json.loads(json.dumps(event))
    # Values the json module wrote as repr() stay repr(), so no field grows into an object.
    assert json.loads(dumps({"part": Part(1), "at": datetime(2024, 1, 2)})) == {
        "part": "Part(id=1)",
        "at": "datetime.datetime(2024, 1, 2, 0, 0)",
    }


@pytest.mark.parametrize("value", ["8-bit \udcff from SMTP", 2**70])
def test_what_orjson_refuses_is_written_by_the_json_module(value: object) -> None:
    event = {"event": "x", "value": value}
    assert json.loads(dumps(event)) == json.loads(json.dumps(event))


@pytest.mark.parametrize("us", [0, 1, 999_999, 123_456, 10**15 + 7, 1_700_000_000_000_000])
def test_time_stamp_is_the_iso_text_of_datetime(us: int) -> None:
    expected = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).isoformat()
    assert iso_utc(us * 1000 + 999) == expected.replace("+00:00", "Z")  # .000000 is left out as well


async def test_lines_of_one_loop_turn_are_written_together_after_it() -> None:
    stream = Stream()
    sink = LineSink(stream)  # type: ignore[arg-type]
    sink.line(b'{"event":"a"}')
    sink.line('{"event":"b"}')
    assert stream.writes == []
    await asyncio.sleep(0)  # the loop turn ends
    assert stream.writes == ['{"event":"a"}\n{"event":"b"}\n']


async def test_a_warning_is_written_at_once_after_what_is_pending() -> None:
    stream = Stream()
    sink = LineSink(stream)  # type: ignore[arg-type]
    sink.line(b"info")
    sink.line_now(b"warning")
    assert stream.writes == ["info\nwarning\n"]


async def test_a_long_turn_writes_every_max_pending_lines() -> None:
    stream = Stream()
    sink = LineSink(stream, max_pending=3)  # type: ignore[arg-type]
    for i in range(7):
        sink.line(str(i))
    assert stream.writes == ["0\n1\n2\n", "3\n4\n5\n"]


def test_without_a_loop_each_line_is_written_at_once() -> None:
    stream = Stream()
    sink = LineSink(stream)  # type: ignore[arg-type]
    sink.line(b"one")
    assert stream.writes == ["one\n"]


def test_configured_daemon_logging_binds_module_loggers_and_loses_no_line_at_exit() -> None:
    code = (
        "import asyncio, structlog\n"
        "from gateway.smtp import relay\n"
        "from gateway.logging import configure\n"
        "configure(json=True, level='INFO')\n"
        "assert not isinstance(relay.log, structlog._config.BoundLoggerLazyProxy), type(relay.log)\n"
        "async def main():\n"
        "    relay.log.info('first', n=1)\n"
        "    relay.log.debug('filtered')\n"
        "    await asyncio.sleep(0)\n"
        "    relay.log.info('last', n=2)\n"  # logged in the loop's final turn: written at exit
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[1],
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert [(r["event"], r["level"], r.get("n")) for r in lines] == [
        ("first", "info", 1),
        ("last", "info", 2),
    ]
    assert all(r["timestamp"].endswith("Z") for r in lines)


class NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_what_no_json_encoder_writes_goes_out_as_its_repr() -> None:
    loop: dict[str, object] = {"n": 1}
    loop["self"] = loop
    event = {"event": "x", "d": {(2, 3): "b", 1: {frozenset({4}): [NoRepr()]}}, "loop": loop, "big": 2**70}
    assert json.loads(dumps(event)) == {
        "event": "x",
        "d": {"(2, 3)": "b", "1": {"frozenset({4})": ["<NoRepr without a repr>"]}},
        "loop": {"n": 1, "self": "{'n': 1, 'self': {...}}"},
        "big": 2**70,
    }


def test_a_log_call_with_a_tuple_key_writes_its_line() -> None:
    code = (
        "from gateway.logging import configure\n"
        "import logging, structlog\n"
        "configure(json=True, level='INFO')\n"
        "log = structlog.get_logger('t')\n"
        "log.info('tuple key', d={(2, 3): 'b'}, password='p')\n"
        "logging.getLogger('lib').warning('lib %s', 'x')\n"
        "log.warning('after', n=1)\n"
    )
    cwd = Path(__file__).parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert [(r["event"], r.get("d"), r.get("password")) for r in lines] == [
        ("tuple key", {"(2, 3)": "b"}, "[redacted]"),
        ("lib x", None, None),
        ("after", None, None),
    ]


def test_a_field_nested_deeper_than_the_stack_still_writes_its_line() -> None:
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    line = json.loads(dumps({"event": "x", "deep": deep, "n": 1}))
    assert line["event"] == "x" and line["n"] == 1 and isinstance(line["deep"], str)
