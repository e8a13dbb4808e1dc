"""A client that pipelines AUTH LOGIN onto the relay port (a script, a mail client on the wrong port)
hears 502 to the AUTH, and its base64 user name and password lines are then unknown commands:
aiosmtpd logged each one at warning level, upper-cased but recoverable. The daemon's log keeps
the warning with the word's length instead, in the daemon's own process and in an intake
worker's. A real daemon process, a raw socket writing the session at once, its JSON log read
whole."""

from __future__ import annotations

import asyncio
import base64
import signal
from pathlib import Path

import pytest

from gateway.smtp.unknownlog import shown_word
from tests.conftest import STAFF, free_port
from tests.fakes.smsc import HappySMSC
from tests.test_process import start_daemon, write_config
from tests.test_session_limits import blocking, dial, read_reply

PASSWORD = "Relay-Pipelined-Pw7"


def pipelined_auth(port: int) -> list[str]:
    """EHLO, AUTH LOGIN and its two answers, QUIT, in one write; every reply until the server closes."""
    user, password = (base64.b64encode(s.encode()) for s in (STAFF, PASSWORD))
    with dial(port) as s:
        read_reply(s)
        s.sendall(b"EHLO script.example\r\nAUTH LOGIN\r\n" + user + b"\r\n" + password + b"\r\nQUIT\r\n")
        answers = []
        while answer := read_reply(s):
            if not answer.startswith("250-"):
                answers.append(answer)
        return answers


@pytest.mark.parametrize("workers", [0, 1])
async def test_a_password_pipelined_onto_the_relay_port_is_not_logged(tmp_path: Path, workers: int) -> None:
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        proc = await start_daemon(
            write_config(tmp_path, smsc.port, smtp_port, intake_processes=workers), smtp_port
        )
        try:
            answers = await blocking(lambda: pipelined_auth(smtp_port))
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 30) == 0
    assert [a[:3] for a in answers] == ["250", "502", "500", "500", "221"], answers
    log = (tmp_path / "daemon.log").read_text().upper()
    for secret in (PASSWORD, STAFF):
        assert base64.b64encode(secret.encode()).decode().upper() not in log
    # The record stays, with the length of what was typed.
    assert log.count("UNRECOGNISED: [28 CHARACTERS]") == 1 and log.count("UNRECOGNISED: [24 CHARACTERS]") == 1


def test_a_command_word_is_shown_and_what_may_be_base64_is_not() -> None:
    assert [shown_word(w) for w in ("XCLIENT", "HELP", "CONNECT", "XFORWARDS")] == [
        "XCLIENT",
        "HELP",
        "CONNECT",
        "XFORWARDS",
    ]
    # A 6- or 9-byte password's base64 may be letters alone, 8 or 12 of them; digits, "+", "/", "=".
    for word in ("YWJJZGVM", "QUJDREVGR0hJ", "CGFZCW==", "UMVSYXKTUGLWZWXPBMVKLVB3NW==", "X" * 13):
        assert shown_word(word) == f"[{len(word)} characters]"
