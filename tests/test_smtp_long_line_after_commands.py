"""A command line over the 12,288-octet cap closes the session with 421, but only after the commands
the input held before it are run and answered. Raw sockets against the real listeners: the relay port
in the daemon and in an intake worker, and the submission port after its login. The guard closed the
session as soon as the line's bytes arrived, before the reader saw anything the same write held before
it: a client that wrote its EHLO and the line heard only the 421, and a mail written whole before the
line was neither answered nor taken, its client unable to tell.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.smtp import replies
from gateway.smtp.closing import first_long_line
from gateway.smtp.commandlines import CommandLines
from tests.certs import make_cert_pair
from tests.conftest import free_port, running_gateway
from tests.test_process import start_daemon
from tests.test_session_limits import blocking, dial, read_reply
from tests.test_smtp_held_body_lines import (
    LIMIT,
    codes,
    config,
    mail,
    relay_session,
    replies_to,
    submission_session,
)
from tests.test_submission import submission_config, with_password

LONG = b"NOOP " + b"x" * 20_000 + b"\r\n"
EHLO_FIRST = b"EHLO x\r\n" + LONG
# A mail written whole, then the long line: the mail is taken and answered, then the 421.
TAKEN_THEN_CLOSED = ["250", "250", "354", "250", "421"]


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def greeted_session(port: int, pieces: list[bytes]) -> list[str]:
    """Right after the greeting, each piece its own write; every reply until the server closes."""
    with dial(port) as s:
        assert read_reply(s).startswith("220")
        return replies_to(s, pieces)


def ehlo_answered(answers: list[str]) -> None:
    assert answers[0].startswith("250-"), answers
    assert codes(answers) == ["250", "421"], answers
    assert answers[-1] == replies.LINE_TOO_LONG


def test_the_line_refused_is_placed_however_the_writes_cut_the_input() -> None:
    # A body's long line written with its DATA is a body line; the command line after it is refused.
    whole = b"EHLO x\r\nMAIL FROM:<a@b>\r\nDATA\r\n" + b"y" * 15_000 + b"\r\n.\r\n" + LONG + b"NOOP\r\n"
    start = whole.index(LONG)
    for cut in [*range(1, len(whole), 251), *range(start - 3, start + 4), start + 12_289, start + 12_290]:
        count, fed = CommandLines(), 0
        for piece in (whole[:cut], whole[cut:]):
            if not count.feed(piece, fed):  # the reader holds all fed so far
                assert count.refused_at is not None and fed + count.refused_at == start, cut
                break
            fed += len(piece)
        else:
            raise AssertionError(f"not refused, cut at {cut}")
    assert first_long_line(b"NOOP\r\n" + LONG) == 6
    assert first_long_line(b"NOOP\r\n" + LONG[:12_290]) == 6  # unended, and at the cap already
    assert first_long_line(b"NOOP\r\n" + LONG[:12_289]) == 12_295  # not yet


@pytest.mark.parametrize(
    "pieces",
    [
        [EHLO_FIRST],
        [EHLO_FIRST[:5_000], EHLO_FIRST[5_000:]],
        [EHLO_FIRST[:-2]],
        [EHLO_FIRST + b"NOOP\r\n" * 300 + b"QUIT\r\n"],
    ],
    ids=["one-write", "line-cut-across-writes", "line-unended", "many-commands-after-it"],
)
async def test_an_ehlo_before_a_long_line_is_answered_on_the_relay_port(
    tmp_path: Path, pieces: list[bytes]
) -> None:
    async with running_gateway(parse_config(config(tmp_path), source="test", base_dir=tmp_path)) as gw:
        ehlo_answered(await blocking(lambda: greeted_session(gw.port, pieces)))


async def test_the_start_of_a_long_line_the_reader_holds_is_never_read(tmp_path: Path) -> None:
    # The line's first octets reached the reader before the rest showed it over the cap: they are
    # dropped with it, not read as a command of their own.
    async with running_gateway(parse_config(config(tmp_path), source="test", base_dir=tmp_path)) as gw:

        def session() -> list[str]:
            with dial(gw.port) as s:
                assert read_reply(s).startswith("220")
                s.sendall(b"NOOP\r\n" + LONG[:5_000])
                assert read_reply(s).startswith("250")
                return replies_to(s, [LONG[5_000:] + b"NOOP\r\n"])

        assert await blocking(session) == [replies.LINE_TOO_LONG]


async def test_a_mail_written_whole_before_a_long_line_is_taken_and_answered(tmp_path: Path) -> None:
    # Its 250 is written before the 421, so the client knows the mail went (and does not send it again).
    async with running_gateway(parse_config(config(tmp_path), source="test", base_dir=tmp_path)) as gw:
        answers = await blocking(lambda: relay_session(gw.port, [mail(b"hello")[: -len(b"QUIT\r\n")] + LONG]))
        assert codes(answers) == TAKEN_THEN_CLOSED, answers
        assert answers[-1] == replies.LINE_TOO_LONG
        assert gw.store.admin.count_messages() == 1


async def test_nothing_after_the_long_line_is_run(tmp_path: Path) -> None:
    # A mail whose DATA comes after the long line is not taken: the session ends at the line.
    async with running_gateway(parse_config(config(tmp_path), source="test", base_dir=tmp_path)) as gw:
        envelope, rest = mail(b"hello").split(b"DATA\r\n", 1)
        answers = await blocking(lambda: relay_session(gw.port, [envelope + LONG + b"DATA\r\n" + rest]))
        assert codes(answers) == ["250", "250", "421"], answers
        assert gw.store.admin.count_messages() == 0


async def test_lines_held_after_a_refused_data_are_answered_before_its_long_line(tmp_path: Path) -> None:
    # A DATA refused (no RCPT yet): the lines written after it are commands after all, and the long one
    # among them closes the session, once those before it are answered.
    async with running_gateway(parse_config(config(tmp_path), source="test", base_dir=tmp_path)) as gw:
        answers = await blocking(
            lambda: relay_session(gw.port, [b"DATA\r\nNOOP\r\nRSET\r\n" + LONG + b"NOOP\r\n"])
        )
        assert codes(answers) == ["503", "250", "250", "421"], answers
        assert answers[-1] == replies.LINE_TOO_LONG


async def test_a_mail_before_a_long_line_is_taken_on_the_submission_port(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    cfg = submission_config(tmp_path, 1, tls_pair, max_message_bytes=LIMIT)
    async with running_gateway(cfg) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        piece = mail(b"hello")[: -len(b"QUIT\r\n")] + LONG
        answers = await blocking(lambda: submission_session(port, tls_pair, [piece]))
        assert codes(answers) == TAKEN_THEN_CLOSED, answers
        assert answers[-1] == replies.LINE_TOO_LONG
        assert gw.store.admin.count_messages() == 1


async def test_commands_before_a_long_line_are_answered_in_an_intake_worker(tmp_path: Path) -> None:
    # The relay port in a worker process (`[smtp] intake_processes`) guards its lines the same way.
    port = free_port()
    path = tmp_path / "config.toml"
    path.write_text(config(tmp_path, intake_processes=1).replace("127.0.0.1:0", f"127.0.0.1:{port}", 1))
    proc = await start_daemon(path, port)
    try:
        ehlo_answered(await blocking(lambda: greeted_session(port, [EHLO_FIRST])))
        answers = await blocking(lambda: relay_session(port, [mail(b"hello")[: -len(b"QUIT\r\n")] + LONG]))
        assert codes(answers) == TAKEN_THEN_CLOSED, answers
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
