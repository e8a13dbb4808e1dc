"""Session limits on both listeners, over raw sockets: connection caps, long lines, idle, command loops;
and the raw-socket helpers other test modules import. Who gives way at the total cap, and mail bodies
under the limits, have modules of their own: test_session_limits_cap.py, test_session_limits_bodies.py."""

from __future__ import annotations

import asyncio
import select
import smtplib
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, mail, running_gateway
from tests.test_submission import submission_config

RCPT = f"601123456@{DOMAIN}"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def dial(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(source, 0))


def read_reply(s: socket.socket) -> str:
    """One reply line; '' when the server closed without one.

    Reads a byte at a time so that a multi-line reply arriving in one segment is still read line by
    line (reading ahead would swallow the next line, or wait for one that never comes).
    """
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(1)
        if not chunk:
            break
        data += chunk
    return data.decode("ascii", "replace").strip()


def last_reply(s: socket.socket) -> str:
    """The last reply line before the server closed (after the NOOPs' 250s, say).

    A byte the client wrote as the server closed (a dripper's, in the very moment of its 421) is
    answered by a reset: the lines read before it stand, the reset ends the reading."""
    last = ""
    try:
        while reply := read_reply(s):
            last = reply
    except ConnectionResetError:
        pass
    return last


def answered(s: socket.socket) -> bool:
    """Whether the server closed, or said 421 (it closes then), as far as the input shows yet."""
    if not select.select([s], [], [], 0)[0]:  # a socket with a timeout would wait for input
        return False
    try:
        seen = s.recv(65536, socket.MSG_PEEK)
    except OSError:
        return True
    return not seen or b"421" in seen


def closed(s: socket.socket) -> bool:
    """True once the server has closed: waits for EOF (or a reset), not for a fixed time."""
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


def at_data(
    port: int, source: str = "127.0.0.1", *, sender: str = STAFF, rcpt: str = RCPT
) -> tuple[socket.socket, str]:
    """A session taken to DATA (EHLO, MAIL, RCPT, DATA) and the reply to DATA."""
    s = dial(port, source)
    read_reply(s)
    for line in (b"EHLO x", b"MAIL FROM:<%s>" % sender.encode(), b"RCPT TO:<%s>" % rcpt.encode()):
        s.sendall(line + b"\r\n")
        while (reply := read_reply(s)).startswith("250-"):
            pass
        assert reply.startswith("250"), reply
    s.sendall(b"DATA\r\n")
    return s, read_reply(s)


async def blocking(fn: Callable[[], Any]) -> Any:
    return await asyncio.wait_for(asyncio.to_thread(fn), 60)


async def test_connections_beyond_the_per_address_cap_get_421(tmp_path: Path, tls_pair: Any) -> None:
    # The default cap (50 per address) counts both listeners; another address still gets in.
    cap = 50
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
            relay, sub = gw.port, gw.daemon.submission_port

            def session() -> list[str]:
                held = [dial(relay if i % 2 else sub) for i in range(cap)]
                try:
                    answers = [read_reply(s) for s in held]
                    with dial(sub) as extra:
                        answers.append(read_reply(extra))
                        assert closed(extra)
                    with dial(relay, "127.0.0.2") as other:
                        answers.append(read_reply(other))
                finally:
                    for s in held:
                        s.close()
                return answers

            answers = await blocking(session)
    assert {a[:3] for a in answers[:cap]} == {"220"}
    assert answers[cap] == replies.TOO_MANY_CONNECTIONS_FROM_ADDRESS
    assert answers[cap + 1].startswith("220")
    assert [e["limit"] for e in logs if e["event"] == "smtp.limit_hit"] == ["per_address"]


@pytest.mark.parametrize("listener", ["relay", "submission"])
async def test_an_endless_line_before_data_is_cut_off(tmp_path: Path, tls_pair: Any, listener: str) -> None:
    # 1 MB without a line end, before any login: refused and closed long before the megabyte is in.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        port = gw.port if listener == "relay" else gw.daemon.submission_port

        def session() -> tuple[str, int]:
            with dial(port) as s:
                read_reply(s)
                sent = 0
                try:
                    for _ in range(256):
                        s.sendall(b"A" * 4096)
                        sent += 4096
                except (BrokenPipeError, ConnectionResetError):
                    pass
                answer = read_reply(s)
                assert closed(s)
                return answer, sent

        answer, _sent = await blocking(session)
    assert answer == replies.LINE_TOO_LONG


async def test_a_noop_loop_ends_with_421(tmp_path: Path, tls_pair: Any) -> None:
    # NOOP/RSET keep no session alive for ever (default: 250 commands without a mail).
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:

        def session() -> list[str]:
            with dial(gw.port) as s:
                read_reply(s)
                answers = []
                for i in range(300):
                    s.sendall(b"NOOP\r\n" if i % 2 else b"RSET\r\n")
                    answers.append(read_reply(s))
                    if not answers[-1].startswith("250"):
                        break
                assert closed(s)
                return answers

        answers = await blocking(session)
    assert answers[-1] == replies.TOO_MANY_COMMANDS
    assert len(answers) == 251


async def test_an_idle_session_is_closed_with_421(tmp_path: Path, tls_pair: Any) -> None:
    # Both listeners: a client that says nothing is told why and disconnected after the idle time.
    cfg = submission_config(tmp_path, 1, tls_pair, timeout_seconds=0.5)
    async with running_gateway(cfg) as gw:

        def session(port: int) -> str:
            with dial(port) as s:
                read_reply(s)
                s.sendall(b"EHLO idle.test\r\n")
                while read_reply(s).startswith("250-"):
                    pass
                answer = read_reply(s)  # blocks until the server speaks or hangs up
                assert closed(s)
                return answer

        answers = [await blocking(lambda p=p: session(p)) for p in (gw.port, gw.daemon.submission_port)]
    assert answers == [replies.IDLE_TIMEOUT] * 2


async def test_a_mail_starts_the_command_count_afresh(tmp_path: Path, tls_pair: Any) -> None:
    # A mail server keeping one session open for many mails is doing real work, not looping.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:

        def session() -> list[int]:
            with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as c:
                codes = []
                for n in range(3):
                    codes += [c.noop()[0] for _ in range(200)]
                    c.send_message(mail(RCPT, f"Mail {n}"), STAFF, [RCPT])
                return codes

        codes = await blocking(session)
        assert gw.store.admin.count_messages() == 3
    assert set(codes) == {250}


async def test_three_hundred_recipients_in_one_transaction_are_not_taken_for_a_command_loop(
    tmp_path: Path, tls_pair: Any
) -> None:
    # A client that puts every recipient in one transaction hears 452 past the relay's 100 and
    # sends the rest again (RFC 5321 4.5.3.1.10). Counted with NOOPs, its 248th RCPT closed the
    # session with 421 and the 100 taken were lost: nothing was sent, again at every retry.
    numbers = [f"60200{n:04d}@{DOMAIN}" for n in range(300)]
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:

        def session() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as c:
                return c.sendmail(STAFF, numbers, mail(numbers[0], "Board at 9").as_bytes())

        refused = await blocking(session)
        assert len(refused) == 200 and {code for code, _ in refused.values()} == {452}
        assert gw.store.admin.count_messages() == 100

        def pipelined(rcpts: int, chunk: int, end: bytes) -> list[str]:
            with dial(gw.port) as s:
                read_reply(s)
                lines = b"EHLO x\r\nMAIL FROM:<" + STAFF.encode() + b">\r\n"
                lines += b"".join(b"RCPT TO:<%s>\r\n" % numbers[n % 300].encode() for n in range(rcpts))
                lines += end
                for i in range(0, len(lines), chunk):
                    s.sendall(lines[i : i + chunk])
                answers = []
                while reply := read_reply(s):
                    answers.append(reply)
                return answers

        # RCPT lines split across segments at every point still count as RCPTs.
        answers = await blocking(lambda: pipelined(500, 7, b"QUIT\r\n"))
        assert answers[-1].startswith("221") and not any(a.startswith("421") for a in answers)
        # Endless RCPTs without a mail are still a loop: closed past 2,000. All sent at once (60 KB,
        # within the sockets' buffers): sent in pieces, a piece after the close met a broken pipe.
        answers = await blocking(lambda: pipelined(2001, 1 << 20, b""))
        assert answers[-1] == replies.TOO_MANY_COMMANDS


async def test_a_refused_mail_does_not_start_the_command_count_afresh(tmp_path: Path, tls_pair: Any) -> None:
    # Only a mail taken is real work: rounds of 100 NOOPs and an empty mail (554) kept a session
    # going for ever, 70,000 commands and counting.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:

        def session() -> list[str]:
            with dial(gw.port) as s:
                read_reply(s)
                s.sendall(b"EHLO x\r\n")
                while read_reply(s).startswith("250-"):
                    pass
                answers: list[str] = []
                for _ in range(4):
                    for line in [b"NOOP"] * 100 + [
                        b"MAIL FROM:<%s>" % STAFF.encode(),
                        b"RCPT TO:<%s>" % RCPT.encode(),
                        b"DATA",
                    ]:
                        s.sendall(line + b"\r\n")
                        answers.append(read_reply(s))
                        if answers[-1].startswith("421") or not answers[-1]:
                            return answers
                    s.sendall(b"Subject:\r\n\r\n.\r\n")  # an empty mail: refused
                    answers.append(read_reply(s))
                return answers

        answers = await blocking(session)
    assert any(a.startswith("554") for a in answers)  # the empty mails were refused...
    assert answers[-1] == replies.TOO_MANY_COMMANDS  # ...and counted no work
