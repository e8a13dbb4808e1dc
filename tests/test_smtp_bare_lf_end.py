"""A client that ends its lines with LF alone hears why its mail never ended when the idle time closes it.

Defect: such a client's "." line (`\\n.\\n`, or `\\n.\\r\\n` after a line it ended so) is no end of
data (CR LF . CR LF only: read as one, a bare LF's "." lets a mail smuggle another past the next hop,
so the gateway waits past it, as Postfix does). The client waited for an answer, and after the idle
time heard only `421 4.4.2 Idle too long`: nothing told its admin that the line ends were the
trouble. Now the 421 says it, and so does a log line; a body that merely stopped coming still hears
the plain 421.

Against the real daemon process (the relay port in the daemon and in an intake process), raw
sockets, the idle time cut to a second (`[smtp] timeout_seconds`).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from gateway.smtp import replies
from tests.conftest import DOMAIN, STAFF, free_port
from tests.test_intake_workers import log_events, stop
from tests.test_process import start_daemon, write_config

HEAD = f"EHLO lf.example\nMAIL FROM:<{STAFF}>\nRCPT TO:<601123456@{DOMAIN}>\nDATA\n".encode()
BODIES = {
    "lf-only": b"Subject: lf only\n\nbare lf client\n.\n",  # waits in the input for CR LF . CR LF
    "dot-alone": b".\n",  # the body's first line: read as a line of its own
    "read-past": b".\nthen a line CR LF ends\r\n",  # read as one line, the "." inside it: not the end
    # The line before the "." ended by LF alone, the "." line by CR LF: read as one line "hello\n.".
    "lf-then-dot-crlf": b"Subject: lf then dot\r\n\r\nhello\n.\r\n",
    "lf-then-dot-crlf-first": b"hello\n.\r\n",  # the same as the body's first line
    "crlf-unended": b"Subject: stalled\r\n\r\nthe rest never comes\r\n",  # no "." line at all
}


def at_idle(port: int, body: bytes) -> str:
    """The last reply of a session that wrote its mail and waits: the server's 421 at the idle time."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(HEAD)
        while not (line := f.readline()).startswith(b"354"):
            assert line[:1] in (b"2",), line
        s.sendall(body)
        return f.readline().decode("ascii").rstrip("\r\n")


@pytest.mark.parametrize("workers", [0, 1], ids=["in-daemon", "intake-process"])
async def test_an_end_of_data_a_bare_lf_ended_is_named_when_the_idle_time_closes(
    tmp_path: Path, workers: int
) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port, intake_processes=workers)
    config.write_text(config.read_text().replace("[smtp]\n", "[smtp]\ntimeout_seconds = 1\n", 1))
    proc = await start_daemon(config, smtp_port)
    try:
        heard = await asyncio.gather(*(asyncio.to_thread(at_idle, smtp_port, b) for b in BODIES.values()))
    finally:
        await stop(proc)
    assert dict(zip(BODIES, heard, strict=True)) == {
        "lf-only": replies.IDLE_BARE_LF_END,
        "dot-alone": replies.IDLE_BARE_LF_END,
        "read-past": replies.IDLE_BARE_LF_END,
        "lf-then-dot-crlf": replies.IDLE_BARE_LF_END,
        "lf-then-dot-crlf-first": replies.IDLE_BARE_LF_END,
        "crlf-unended": replies.IDLE_TIMEOUT,
    }
    assert (
        'end of data must be <CR><LF>.<CR><LF>; a line "." ended or preceded by LF alone was seen' in heard[0]
    )
    said = log_events(tmp_path, "smtp.bare_lf_end_of_data")
    assert said and all(line["ip"] == "127.0.0.1" for line in said), said
    # One line a second at most, those held back counted in the next or in the summary at the stop.
    lines = [line for line in said if not line.get("summary")]
    assert len(lines) + sum(int(str(line.get("suppressed", 0))) for line in said) == 5, said
    assert log_events(tmp_path, "smtp.accepted") == []
