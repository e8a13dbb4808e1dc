"""A session written whole (a script, a bulk writer, a pipelining client that does not wait for the
354) is told line by line as aiosmtpd reads it: its body is held as a body up to the end of data that
the reader sees, whatever line ends it has and however the writes cut it. Raw sockets against the real
listeners: the relay port in the daemon and in an intake worker, and the submission port after its
login. A body's line read as a command closed the session with `421 Command line too long` or `421 Too
many commands without a mail`, and the mail was lost (the client's retry met the same 421).
"""

from __future__ import annotations

import asyncio
import base64
import signal
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, config_text, free_port, running_gateway
from tests.test_process import start_daemon
from tests.test_session_limits import blocking, dial, read_reply
from tests.test_submission import PASSWORD, submission_config, with_password

RCPT = f"601123456@{DOMAIN}"
LIMIT = 20_000  # max_message_bytes
ENVELOPE = b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n" % (STAFF.encode(), RCPT.encode())
HEAD = b"Subject: held\r\n\r\n"
TAKEN = ["250", "250", "354", "250", "221"]  # MAIL, RCPT, DATA, the mail, QUIT
TOO_BIG = ["250", "250", "354", "552", "221"]


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def config(tmp_path: Path, **smtp: Any) -> str:
    keys = "".join(f"{k} = {v!r}\n" for k, v in {"max_message_bytes": LIMIT, **smtp}.items())
    return config_text(tmp_path, smsc_port=1).replace("[smtp]\n", "[smtp]\n" + keys, 1)


def mail(body: bytes, data: bytes = b"DATA") -> bytes:
    return ENVELOPE + data + b"\r\n" + HEAD + body + b"\r\n.\r\nQUIT\r\n"


def codes(answers: list[str]) -> list[str]:
    return [a[:3] for a in answers if a[3:4] != "-"]


def replies_to(s: socket.socket, pieces: list[bytes]) -> list[str]:
    """Each piece its own write, then every reply until the server closes."""
    for piece in pieces:
        s.sendall(piece)
    answers = []
    try:
        while reply := read_reply(s):
            answers.append(reply)
    except ConnectionResetError:
        pass
    return answers


def relay_session(port: int, pieces: list[bytes]) -> list[str]:
    with dial(port) as s:
        read_reply(s)
        s.sendall(b"EHLO x\r\n")
        while read_reply(s).startswith("250-"):
            pass
        return replies_to(s, pieces)


def submission_session(port: int, tls: tuple[Path, Path], pieces: list[bytes]) -> list[str]:
    """Logged in over STARTTLS, then the transaction written whole as on the relay port."""

    def say(s: socket.socket, line: bytes) -> str:
        s.sendall(line + b"\r\n")
        while (reply := read_reply(s)).startswith("250-"):
            pass
        return reply

    with dial(port) as plain:
        read_reply(plain)
        say(plain, b"EHLO x")
        assert say(plain, b"STARTTLS").startswith("220")
        context = ssl.create_default_context(cafile=str(tls[0]))
        with context.wrap_socket(plain, server_hostname="localhost") as s:
            say(s, b"EHLO x")
            login = base64.b64encode(f"\0{STAFF}\0{PASSWORD}".encode())
            assert say(s, b"AUTH PLAIN " + login).startswith("235")
            return replies_to(s, pieces)


# A "." line after a line a bare LF ends is body to aiosmtpd (the end of data is CR LF . CR LF): the
# lines after it were taken for commands. A line the size of an HTML part, one over the size limit, or
# 400 log lines then closed the session.
BARE_LF_DOT = b"hello\n.\r\n"
AFTER_BARE_LF = {
    "long-line": (BARE_LF_DOT + b"x" * 15_000, TAKEN),
    "over-the-limit": (BARE_LF_DOT + b"x" * 30_000, TOO_BIG),
    "many-lines": (BARE_LF_DOT + b"log line\r\n" * 400 + b"end", TAKEN),
}


@pytest.mark.parametrize("body, expected", list(AFTER_BARE_LF.values()), ids=list(AFTER_BARE_LF))
async def test_a_dot_line_after_a_bare_lf_leaves_the_body_held_on_the_relay_port(
    tmp_path: Path, body: bytes, expected: list[str]
) -> None:
    # The same input cut at every octet: tests/test_commandlines.py (a write may reach the server
    # after its DATA ran, when nothing is held any more, so cuts here would prove nothing).
    async with running_gateway(parse_config(config(tmp_path), source="test", base_dir=tmp_path)) as gw:
        answers = await blocking(lambda: relay_session(gw.port, [mail(body)]))
        assert codes(answers) == expected, answers
        assert gw.store.admin.count_messages() == (1 if expected == TAKEN else 0)
        if expected == TOO_BIG:
            assert replies.too_big(LIMIT) in answers


@pytest.mark.parametrize("body, expected", list(AFTER_BARE_LF.values()), ids=list(AFTER_BARE_LF))
async def test_a_dot_line_after_a_bare_lf_leaves_the_body_held_on_the_submission_port(
    tmp_path: Path, tls_pair: tuple[Path, Path], body: bytes, expected: list[str]
) -> None:
    cfg = submission_config(tmp_path, 1, tls_pair, max_message_bytes=LIMIT)
    async with running_gateway(cfg) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        answers = await blocking(lambda: submission_session(port, tls_pair, [mail(body)]))
        assert codes(answers) == expected, answers
        assert gw.store.admin.count_messages() == (1 if expected == TAKEN else 0)


async def test_a_dot_line_after_a_bare_lf_leaves_the_body_held_in_an_intake_worker(tmp_path: Path) -> None:
    # The relay port in a worker process (`[smtp] intake_processes`) counts its lines the same way.
    port = free_port()
    path = tmp_path / "config.toml"
    path.write_text(config(tmp_path, intake_processes=1).replace("127.0.0.1:0", f"127.0.0.1:{port}", 1))
    proc = await start_daemon(path, port)
    try:
        for body, expected in AFTER_BARE_LF.values():
            answers = await blocking(lambda b=body: relay_session(port, [mail(b)]))
            assert codes(answers) == expected, answers
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0


# aiosmtpd runs "DATA" followed by any blanks as DATA; only "DATA" with at most two of them was told as
# one, so the body after "DATA   " was read as commands.
BLANKS = {"spaces": b"DATA   ", "tab": b"data \t ", "512-octets": b"Data" + b" " * 508}
BODIES = {"over-the-limit": (b"x" * 30_000, TOO_BIG), "many-lines": (b"log line\r\n" * 400, TAKEN)}


@pytest.mark.parametrize("data", list(BLANKS.values()), ids=list(BLANKS))
@pytest.mark.parametrize("body, expected", list(BODIES.values()), ids=list(BODIES))
async def test_a_data_line_with_blanks_after_it_holds_its_body(
    tmp_path: Path, data: bytes, body: bytes, expected: list[str]
) -> None:
    async with running_gateway(parse_config(config(tmp_path), source="test", base_dir=tmp_path)) as gw:
        answers = await blocking(lambda: relay_session(gw.port, [mail(body, data)]))
        assert codes(answers) == expected, answers


# A command line of 12,288 octets and its CR LF (what aiosmtpd takes for AUTH, RFC 4954 4) was one over
# the guard's cap: 421 and closed, where one octet shorter heard 500 and the session went on.
AT_THE_CAP = b"NOOP " + b"x" * (12_288 - 5)


@pytest.mark.parametrize(
    "pieces",
    [[AT_THE_CAP + b"\r\nNOOP\r\nQUIT\r\n"], [AT_THE_CAP + b"\r", b"\nNOOP\r\nQUIT\r\n"]],
    ids=["one-write", "cut-between-cr-and-lf"],
)
async def test_a_command_line_at_the_cap_hears_500_and_the_session_goes_on(
    tmp_path: Path, pieces: list[bytes]
) -> None:
    async with running_gateway(parse_config(config(tmp_path), source="test", base_dir=tmp_path)) as gw:
        answers = await blocking(lambda: relay_session(gw.port, pieces))
        assert codes(answers) == ["500", "250", "221"], answers
        assert answers[0].startswith("500 5.5.2")
        # One octet more is over the cap: told so, and closed (README: session limits).
        answers = await blocking(lambda: relay_session(gw.port, [AT_THE_CAP + b"x\r\nNOOP\r\n"]))
        assert answers == [replies.LINE_TOO_LONG]
