"""RFC 2920 PIPELINING: advertised on both listeners; a pipelined group gets every reply, in order,
refusals in the middle included; and the replies of a group leave in one write.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from gateway.smtp import replies
from gateway.smtp.protocol import LeanSMTP
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, free_port, running_gateway
from tests.test_session_limits import blocking, dial, read_reply
from tests.test_submission import submission_config


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def ehlo(s: socket.socket) -> list[str]:
    s.sendall(b"EHLO mx.client.test\r\n")
    lines = []
    while not (line := read_reply(s)).startswith("250 "):
        lines.append(line)
    return [*lines, line]


def body(subject: str) -> bytes:
    return f"From: {STAFF}\r\nSubject: {subject}\r\n\r\nPipelined text\r\n.\r\n".encode()


async def test_both_listeners_advertise_pipelining(tmp_path: Path, tls_pair: Any) -> None:
    async with running_gateway(submission_config(tmp_path, free_port(), tls_pair)) as gw:

        def both() -> list[list[str]]:
            out = []
            for port in (gw.port, gw.daemon.submission_port):
                with dial(port) as s:
                    read_reply(s)
                    out.append(ehlo(s))
            return out

        for lines in await blocking(both):
            assert "250-PIPELINING" in lines
            assert lines[-1].startswith("250 ")  # still one reply, ended by its last line


async def test_a_pipelined_group_gets_every_reply_in_order(tmp_path: Path, tls_pair: Any) -> None:
    async with running_gateway(submission_config(tmp_path, free_port(), tls_pair)) as gw:

        def session() -> list[str]:
            with dial(gw.port) as s:
                read_reply(s)
                ehlo(s)
                # One write: a good recipient, a refused one in the middle, another good one, DATA.
                s.sendall(
                    f"MAIL FROM:<{STAFF}>\r\nRCPT TO:<601123456@{DOMAIN}>\r\n"
                    f"RCPT TO:<601123456@elsewhere.test>\r\nRCPT TO:<601123457@{DOMAIN}>\r\nDATA\r\n".encode()
                )
                answers = [read_reply(s) for _ in range(5)]
                # The mail's end, then a group whose MAIL is refused (an unknown sender), in one write.
                refused = f"MAIL FROM:<nobody@unknown.test>\r\nRCPT TO:<601123458@{DOMAIN}>\r\nDATA\r\n"
                s.sendall(body("first") + refused.encode() + b"QUIT\r\n")
                answers += [read_reply(s) for _ in range(5)]
                return answers

        answers = await blocking(session)
        assert answers[:5] == [
            replies.OK_SENDER,
            replies.OK_RCPT,
            replies.RELAY_DENIED.format("601123456@elsewhere.test"),
            replies.OK_RCPT,
            answers[4],
        ]
        assert answers[4].startswith("354")
        assert answers[5].startswith("250 2.0.0 OK: queued as ")
        assert answers[6] == replies.SENDER_NOT_HERE.format(ip="127.0.0.1")
        assert [a[:3] for a in answers[7:]] == ["503", "503", "221"]  # no MAIL, so no RCPT, no DATA
        rows = gw.store.db.conn.execute("SELECT recipient FROM messages ORDER BY id").fetchall()
        assert [r[0] for r in rows] == ["+48601123456", "+48601123457"]


class Writer:
    """The session's writer, recording each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    async def drain(self) -> None:
        pass


async def test_held_replies_leave_with_the_first_reply_that_ends_the_group() -> None:
    async def handled(_arg: str | None) -> None:
        await server.push("250 2.1.0 Sender OK")

    server = LeanSMTP(object(), loop=asyncio.get_running_loop())
    server._reader = asyncio.StreamReader()
    server._writer = writer = Writer()  # type: ignore[assignment]
    mail_command = server._grouped(handled)

    server._reader.feed_data(b"RCPT TO:<a@b>\r\n")  # the client sent more without waiting
    await mail_command(None)
    await server.push("250-first line of a longer reply")
    assert writer.writes == []
    await server.push("354 End data with <CR><LF>.<CR><LF>")  # DATA never waits
    assert writer.writes == [b"250 2.1.0 Sender OK\r\n250-first line of a longer reply\r\n354 End data"
                             b" with <CR><LF>.<CR><LF>\r\n"]  # fmt: skip

    await server._reader.readuntil()  # that line is read: nothing whole is waiting any more
    server._reader.feed_data(b"DAT")  # half a line is no reason to wait
    await mail_command(None)
    assert writer.writes[-1] == b"250 2.1.0 Sender OK\r\n"
