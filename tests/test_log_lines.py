"""Every line of a JSON log file is one JSON object, also after a SIGKILL tore the last one
(issue 9, item 10b): the next start ends the torn line before writing its own.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

from gateway.logging import end_torn_line
from tests.conftest import DOMAIN, free_port, mail, send_blocking
from tests.test_process import start_daemon, write_config

TORN = '{"event": "smtp.accepted", "level": "info", "timesta'  # what a kill mid-write leaves


def test_torn_line_is_ended_once_and_a_whole_one_is_left_alone(tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    log.write_text('{"event": "a"}\n' + TORN)
    with log.open("a") as stream:  # write-only and appending, as `2>>daemon.log` opens stderr
        end_torn_line(stream)
        end_torn_line(stream)  # already ended: nothing more
        stream.write('{"event": "b"}\n')
    assert log.read_text().splitlines() == ['{"event": "a"}', TORN, '{"event": "b"}']


async def test_daemon_started_after_a_sigkill_writes_whole_json_lines(tmp_path: Path) -> None:
    smsc_port, smtp_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port)
    log = tmp_path / "daemon.log"
    proc = await start_daemon(config, smtp_port)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with log.open("a") as f:
        f.write(TORN)  # the killed process was in the middle of a line
    proc = await start_daemon(config, smtp_port)
    try:
        res = await asyncio.to_thread(
            send_blocking, smtp_port, mail(f"601123456@{DOMAIN}", "Logged"), [f"601123456@{DOMAIN}"]
        )
        assert res.error is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    lines = log.read_text().splitlines()
    assert TORN in lines  # the torn line stays on its own
    # An empty line is harmless (the start could not tell whether the file ended a line); a merged one is not.
    whole = [line for line in lines if line and line != TORN]
    assert len(whole) > 3
    for line in whole:
        json.loads(line)  # each of the second run's lines is whole, the first one included


def test_library_records_are_json_lines_too(tmp_path: Path) -> None:
    # apscheduler's job errors and asyncio's "exception never retrieved" come through the stdlib logger;
    # in a JSON log they must be JSON objects as well, tracebacks included, never plain text lines.
    code = (
        "import logging\n"
        "from gateway.logging import configure\n"
        "configure(json=True)\n"
        "logging.getLogger('apscheduler.executors').error('Job %s raised', 'purge')\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    logging.getLogger('asyncio').exception('Future exception was never retrieved')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[1],
    )
    records = [json.loads(line) for line in out.stderr.splitlines()]
    assert [(r["logger"], r["level"]) for r in records] == [
        ("apscheduler.executors", "error"),
        ("asyncio", "error"),
    ]
    assert records[0]["event"] == "Job purge raised"
    assert "ZeroDivisionError" in records[1]["exception"]
