"""A write that takes the session past `max_commands_without_mail` (or the RCPTs' cap) closes it with
`421 Too many commands`, but only after the commands the input held before the line past the limit
are run and answered. Raw sockets against the real listeners: the relay port in the daemon and in an
intake worker, and the submission port after STARTTLS and its login. The guard closed the session as
soon as the write's bytes arrived: the commands within the limit that came with it went unanswered,
and a mail written whole before them was neither answered nor taken.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.smtp import replies
from gateway.smtp.commandlines import CommandLines
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, free_port, running_gateway
from tests.test_process import start_daemon
from tests.test_session_limits import blocking
from tests.test_smtp_held_body_lines import codes, config, mail, relay_session, submission_session
from tests.test_smtp_long_line_after_commands import LONG, greeted_session
from tests.test_submission import submission_config, with_password

MAX = 10  # [smtp] max_commands_without_mail, its least
NOOPS = b"NOOP\r\n" * (MAX + 5)


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def limited(tmp_path: Path, **smtp: object) -> str:
    return config(tmp_path, max_commands_without_mail=MAX, **smtp)


def answered_then_closed(answers: list[str], before: list[str]) -> None:
    assert codes(answers) == [*before, "421"], answers
    assert answers[-1] == replies.TOO_MANY_COMMANDS


def test_the_line_past_the_limit_is_placed_however_the_writes_cut_the_input() -> None:
    # The eleventh command line, wherever the input is cut; a RCPT's cap likewise.
    from gateway.smtp.closing import line_start  # (here: the old code had none, and its other tests run)

    for whole, line, count in (
        (NOOPS, MAX, CommandLines(MAX)),
        (b"RCPT TO:<a@b>\r\n" * 5, 3, CommandLines(MAX, max_rcpts=3)),
    ):
        start = line_start(whole, line)
        for cut in range(1, len(whole)):
            counted, fed = CommandLines(count.max_lines, count.max_rcpts), 0
            for piece in (whole[:cut], whole[cut:]):
                assert counted.feed(piece, fed)
                if counted.over_at is not None:
                    assert fed + counted.over_at == start, cut
                    break
                fed += len(piece)
            else:
                raise AssertionError(f"not past the limit, cut at {cut}")


async def test_the_commands_within_the_limit_are_answered_on_the_relay_port(tmp_path: Path) -> None:
    async with running_gateway(parse_config(limited(tmp_path), source="test", base_dir=tmp_path)) as gw:
        # After the EHLO, nine NOOPs are within the limit: they are answered, then the 421.
        answers = await blocking_session(gw.port, [NOOPS])
        answered_then_closed(answers, ["250"] * (MAX - 1))


async def test_a_mail_written_with_commands_past_the_limit_is_taken(tmp_path: Path) -> None:
    # The mail's lines are within the limit: it is taken and hears its 250 before the 421.
    async with running_gateway(parse_config(limited(tmp_path), source="test", base_dir=tmp_path)) as gw:
        whole = mail(b"hello")[: -len(b"QUIT\r\n")] + NOOPS
        answers = await blocking_session(gw.port, [whole])
        assert codes(answers)[:4] == ["250", "250", "354", "250"], answers
        assert answers[-1] == replies.TOO_MANY_COMMANDS
        assert gw.store.admin.count_messages() == 1


async def test_the_count_past_the_limit_comes_before_a_long_line_after_it(tmp_path: Path) -> None:
    async with running_gateway(parse_config(limited(tmp_path), source="test", base_dir=tmp_path)) as gw:
        answers = await blocking_session(gw.port, [NOOPS + LONG])
        answered_then_closed(answers, ["250"] * (MAX - 1))


async def test_lines_held_after_a_refused_data_are_answered_up_to_the_limit(tmp_path: Path) -> None:
    # DATA refused (no MAIL): the lines written after it are commands after all; EHLO and DATA are two.
    async with running_gateway(parse_config(limited(tmp_path), source="test", base_dir=tmp_path)) as gw:
        answers = await blocking_session(gw.port, [b"DATA\r\n" + NOOPS])
        answered_then_closed(answers, ["503"] + ["250"] * (MAX - 2))


async def test_the_rcpts_within_their_cap_are_answered(tmp_path: Path) -> None:
    # 2,000 RCPT lines without a mail are the cap: the 2,001st closes the session once they are answered.
    async with running_gateway(parse_config(config(tmp_path), source="test", base_dir=tmp_path)) as gw:
        rcpts = b"RCPT TO:<601123456@%s>\r\n" % DOMAIN.encode() * 2001
        answers = await blocking_session(gw.port, [rcpts])
        answered_then_closed(answers, ["503"] * 2000)


async def test_the_commands_within_the_limit_are_answered_on_the_submission_port(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    # EHLO, STARTTLS, EHLO and AUTH are four of the ten.
    cfg = submission_config(tmp_path, 1, tls_pair, max_commands_without_mail=MAX)
    async with running_gateway(cfg) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        answers = await blocking(lambda: submission_session(port, tls_pair, [NOOPS]))
        answered_then_closed(answers, ["250"] * (MAX - 4))


async def test_the_commands_within_the_limit_are_answered_in_an_intake_worker(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "config.toml"
    text = limited(tmp_path, intake_processes=1)
    path.write_text(text.replace("127.0.0.1:0", f"127.0.0.1:{port}", 1))
    proc = await start_daemon(path, port)
    try:
        answers = await blocking(lambda: greeted_session(port, [b"EHLO x\r\n" + NOOPS]))
        assert answers[0].startswith("250-"), answers
        answered_then_closed(answers, ["250"] * MAX)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0


async def blocking_session(port: int, pieces: list[bytes]) -> list[str]:
    """`relay_session` (its EHLO is the first command) in a thread, off the daemon's loop."""
    return await blocking(lambda: relay_session(port, pieces))
