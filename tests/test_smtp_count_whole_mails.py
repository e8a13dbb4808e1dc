"""`max_commands_without_mail` counted over mails written whole, one write for several commands, bodies
and the lines after them, as the session will take them: a mail's "." line begins the count again when
its mail is taken, and a DATA refused makes its held lines commands counted before those after them.
Raw sockets against the real relay port.

Counted at receipt, six mails of three commands each written in one write heard `421 Too many
commands` at the fifth, as if none had been taken; and the lines written after a refused DATA's "."
were counted before its held lines, so the `421` came two commands early.
"""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from gateway.smtp import replies
from gateway.smtp.commandlines import CommandLines
from tests.conftest import DOMAIN, STAFF, running_gateway
from tests.test_smtp_command_limit_pipelined import MAX, blocking_session, limited
from tests.test_smtp_held_body_lines import codes

NOOP = b"NOOP\r\n"
SMALL = 1024  # [smtp] max_message_bytes, its least


def whole(i: int, body: bytes = b"hello") -> bytes:
    """A mail of three command lines (MAIL, RCPT, DATA), its body and its "." line."""
    return b"MAIL FROM:<%s>\r\nRCPT TO:<60112%04d@%s>\r\nDATA\r\nSubject: m%d\r\n\r\n%s\r\n.\r\n" % (
        STAFF.encode(),
        i,
        DOMAIN.encode(),
        i,
        body,
    )


# EHLO (1), NOOP (2), MAIL (3), a RCPT refused, DATA (4) refused: its three NOOPs and "." are 5 to 8,
# the two NOOPs after them 9 and 10, and the third is the line past the limit.
REFUSED_DATA = (
    b"NOOP\r\nMAIL FROM:<%s>\r\nRCPT TO:<x@nowhere.example>\r\nDATA\r\n" % STAFF.encode()
    + NOOP * 3
    + b".\r\n"
    + NOOP * 5
)


def test_a_refused_datas_held_lines_count_before_the_lines_after_its_dot() -> None:
    count = CommandLines(MAX)
    assert count.feed(b"EHLO x\r\n", 0)
    assert count.feed(REFUSED_DATA, 0) and not count.past()
    count.data_refused(count.data_run(len(REFUSED_DATA) - REFUSED_DATA.index(b"NOOP\r\n" * 3)))
    assert (count.lines, count.over_held) == (4 + 4 + 5, 6)  # six lines the reader holds come first


async def test_the_lines_after_a_refused_datas_dot_are_answered_up_to_the_limit(tmp_path: Path) -> None:
    async with running_gateway(parse_config(limited(tmp_path), source="test", base_dir=tmp_path)) as gw:
        answers = await blocking_session(gw.port, [REFUSED_DATA])
        got = codes(answers)
        assert got[:3] == ["250", "250", "550"] and got[3][0] == "5", answers  # the DATA refused
        assert got[4:] == ["250", "250", "250", "500", "250", "250", "421"], answers
        assert answers[-1] == replies.TOO_MANY_COMMANDS


async def test_mails_written_whole_in_one_write_are_each_taken(tmp_path: Path) -> None:
    # Six mails of three commands each, within the limit of ten as each taken begins the count again.
    async with running_gateway(parse_config(limited(tmp_path), source="test", base_dir=tmp_path)) as gw:
        answers = await blocking_session(gw.port, [b"".join(whole(i) for i in range(6)) + b"QUIT\r\n"])
        assert codes(answers) == ["250", "250", "354", "250"] * 6 + ["221"], answers
        assert gw.store.admin.count_messages() == 6


async def test_mails_not_taken_written_whole_count_on(tmp_path: Path) -> None:
    # Each mail over the size limit hears 552 and begins nothing: EHLO and MAIL and DATA of four mails
    # are nine; the fifth's MAIL is the tenth, its DATA past the limit. (Small, to come in one read.)
    cfg = parse_config(limited(tmp_path, max_message_bytes=SMALL), source="test", base_dir=tmp_path)
    async with running_gateway(cfg) as gw:
        big = b"x" * (SMALL + 10)
        answers = await blocking_session(gw.port, [b"".join(whole(i, big) for i in range(6))])
        assert codes(answers) == ["250", "250", "354", "552"] * 4 + ["250", "250", "421"], answers
        assert gw.store.admin.count_messages() == 0
