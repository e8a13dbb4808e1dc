"""Clients that do not wait for replies: scripts that write a whole session at once (`printf ... | nc`),
those that half-close after it (`nc -N`), and mail programs' long DSN parameters. Raw sockets
against the real listeners: the lines exactly as such clients put them on the wire.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, config_text, free_port, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_process import send_marker, start_daemon, write_config
from tests.test_session_limits import blocking, dial, read_reply
from tests.test_submission import PASSWORD, secure, submission_config, with_password

RCPT = f"601123456@{DOMAIN}"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def relay_config(tmp_path: Path) -> Any:
    return parse_config(config_text(tmp_path, smsc_port=1), source="test config", base_dir=tmp_path)


def all_replies(s: socket.socket) -> list[str]:
    """Every reply line until the server closes."""
    answers = []
    try:
        while reply := read_reply(s):
            answers.append(reply)
    except ConnectionResetError:
        pass
    return answers


def script(port: int, session: bytes, *, half_close: bool = False) -> list[str]:
    """A session in one write after the greeting, as a script pipes it; the replies after the greeting."""
    with dial(port) as s:
        read_reply(s)
        s.sendall(session)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        return all_replies(s)


def one_mail(lines: int, subject: str = "oneshot") -> bytes:
    body = b"".join(b"log line %d\r\n" % i for i in range(lines))
    return b"EHLO x\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\nSubject: %s\r\n\r\n%s.\r\n" % (
        STAFF.encode(),
        RCPT.encode(),
        subject.encode(),
        body,
    )


# ---- a session in one write ----------------------------------------------------------------------


async def test_a_body_in_the_same_write_as_data_is_no_command_flood(tmp_path: Path) -> None:
    # The 300 body lines arrived before DATA was run and were counted as commands: 421 at the 250th,
    # and the mail was lost. Its lines are the body, and the next mail's lines after them too.
    async with running_gateway(relay_config(tmp_path)) as gw:
        answers = await blocking(lambda: script(gw.port, one_mail(300) + one_mail(400)[8:] + b"QUIT\r\n"))
        assert answers[-1].startswith("221"), answers
        codes = [a[:3] for a in answers if not a.startswith("250-")]
        assert codes == ["250"] * 3 + ["354", "250"] + ["250"] * 2 + ["354", "250", "221"]
        assert gw.store.admin.count_messages() == 2


@pytest.mark.parametrize(
    "flood",
    [
        b"EHLO x\r\nDATA\r\n" + b"NOOP\r\n" * 300,  # DATA refused (no MAIL): its lines are commands
        one_mail(3) + b"NOOP\r\n" * 300,  # the lines after the body's end are commands again
        b"EHLO x\r\nDATA\r\n" + b"NOOP\r\n" * 100 + b"DATA\r\n" + b"NOOP\r\n" * 200,
    ],
    ids=["after-a-refused-data", "after-the-body", "after-two-refused-data"],
)
async def test_commands_after_a_data_still_count(tmp_path: Path, flood: bytes) -> None:
    async with running_gateway(relay_config(tmp_path)) as gw:
        answers = await blocking(lambda: script(gw.port, flood))
    assert answers[-1] == replies.TOO_MANY_COMMANDS, answers[-3:]


async def test_commands_after_a_data_refused_before_starttls_still_count(
    tmp_path: Path, tls_pair: Any
) -> None:
    # On the submission port DATA before STARTTLS is refused before it is run (530): the NOOPs after
    # it, never ended by a ".", would be read one by one as commands; they count as they arrive.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        port = gw.daemon.submission_port
        answers = await blocking(lambda: script(port, b"EHLO x\r\nDATA\r\n" + b"NOOP\r\n" * 300))
    assert answers[-1] == replies.TOO_MANY_COMMANDS, answers[-3:]


# ---- a session that half-closes after its last line ----------------------------------------------


def codes(answers: list[str]) -> list[str]:
    return [a[:3] for a in answers if not a.startswith("250-")]


async def test_a_half_closed_session_hears_its_250_and_221(tmp_path: Path) -> None:
    # aiosmtpd cancelled the session at the client's EOF: the mail was stored and sent, but the
    # client (`printf ... | nc -N`) read EOF after the 354, took it as not delivered, and retried.
    async with running_gateway(relay_config(tmp_path)) as gw:
        answers = await blocking(lambda: script(gw.port, one_mail(3) + b"QUIT\r\n", half_close=True))
        assert codes(answers) == ["250"] * 3 + ["354", "250", "221"], answers
        # Without QUIT: the mail's 250, then the server closes.
        answers = await blocking(lambda: script(gw.port, one_mail(3, "second"), half_close=True))
        assert codes(answers) == ["250"] * 3 + ["354", "250"], answers
        assert gw.store.admin.count_messages() == 2


async def test_a_half_close_within_data_stores_nothing_and_an_idle_one_closes_at_once(
    tmp_path: Path,
) -> None:
    # The default idle time is 300 s: a half-closed session that lingered would outlast the reads'
    # 20 s timeout (socket.timeout) instead of ending with EOF after its replies.
    async with running_gateway(relay_config(tmp_path)) as gw:
        unended = one_mail(3)[: -len(b".\r\n")]
        answers = await blocking(lambda: script(gw.port, unended, half_close=True))
        assert codes(answers) == ["250"] * 3 + ["354"], answers
        answers = await blocking(lambda: script(gw.port, b"EHLO x\r\nNOOP", half_close=True))
        assert codes(answers) == ["250"], answers  # the line the EOF cut is not run
        assert gw.store.admin.count_messages() == 0


async def test_a_half_closed_session_through_an_intake_worker_sends_one_sms(tmp_path: Path) -> None:
    # The relay port in a worker process (`[smtp] intake_processes`): the same session class, the
    # mail taken across the process boundary; the 250 must still reach the client, and one SMS go.
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        proc = await start_daemon(write_config(tmp_path, smsc.port, smtp_port, intake_processes=1), smtp_port)
        try:
            answers = await blocking(lambda: script(smtp_port, one_mail(3) + b"QUIT\r\n", half_close=True))
            if codes(answers)[4:5] != ["250"]:  # no 250: the client sends the mail again, as it must
                await blocking(lambda: script(smtp_port, one_mail(3) + b"QUIT\r\n"))
            await send_marker(smsc, smtp_port)  # any second SMS has gone by then
            sent = [sms.text for sms in smsc.received if sms.text != "Marker"]
            assert sent == ["oneshot: log line 0\nlog line 1\nlog line 2"]
            assert codes(answers) == ["250"] * 3 + ["354", "250", "221"], answers
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 30) == 0


# ---- DSN parameters: the longer command lines the advertised extensions allow --------------------


def xtext(text: str) -> str:
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else f"+{ord(c):02X}" for c in text)


# An SRS-style forwarded recipient full of "=" and "+" (three characters each in xtext): an ORCPT of
# 483 characters, within RFC 3461's 500, on a RCPT line of 548.
ORCPT = "rfc822;" + xtext("SRS0=" + "=".join(["ab+cd"] * 45) + "@forwarder.example.com")
LONG_PATH = "u" * 64 + "@" + "d" * 63 + "." + "e" * 63 + "." + "f" * 50 + ".example"


def say(s: socket.socket, line: str) -> str:
    s.sendall(line.encode("ascii") + b"\r\n")
    while (reply := read_reply(s)).startswith("250-"):
        pass
    return reply


async def test_dsn_parameters_within_rfc_3461s_allowance_are_read(tmp_path: Path) -> None:
    # EHLO lists DSN, yet the RCPT and MAIL lines it allows were held to RFC 5321's 512 octets.
    async with running_gateway(relay_config(tmp_path)) as gw:

        def session() -> list[str]:
            with dial(gw.port) as s:
                read_reply(s)
                answers = [say(s, "EHLO x")]
                # SIZE (+26), 8BITMIME (+16), SMTPUTF8 (+10) and DSN (+100): 664 octets; this is 561,
                # read (the sender is no customer's: 550) instead of 500.
                params = f"SIZE=1000 BODY=8BITMIME RET=HDRS ENVID={'Q' * 100} AUTH={xtext('m@' + 'g' * 150)}"
                answers.append(say(s, f"MAIL FROM:<{LONG_PATH}> {params}"))
                answers.append(say(s, f"MAIL FROM:<{STAFF}>"))
                answers.append(say(s, f"RCPT TO:<{RCPT}> NOTIFY=SUCCESS,FAILURE ORCPT={ORCPT}"))
                # Past RFC 3461's 500 more for RCPT: still too long.
                answers.append(say(s, f"RCPT TO:<{RCPT}> NOTIFY=NEVER ORCPT=rfc822;{'x' * 1000}@example.com"))
                return answers

        answers = await blocking(session)
    assert [a[:3] for a in answers] == ["250", "550", "250", "250", "500"], answers


async def test_mails_auth_parameter_may_be_500_longer_where_auth_is_advertised(
    tmp_path: Path, tls_pair: Any
) -> None:
    # RFC 4954 5: AUTH= adds 500 to MAIL's line, on the port that advertises AUTH (this one is 633).
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        auth = xtext("mailer-daemon@" + "g" * 450 + ".example")

        def session() -> tuple[int, bytes]:
            with secure(port, tls_pair) as c:
                c.login(STAFF, PASSWORD)
                return c.docmd("MAIL", f"FROM:<{STAFF}> SIZE=1000 RET=FULL ENVID={'Q' * 100} AUTH={auth}")

        code, text = await blocking(session)
    assert code == 250, text


async def test_a_refused_second_ehlo_leaves_the_first_ehlos_line_limits(tmp_path: Path) -> None:
    # A bare EHLO hears 501 and the session's first EHLO stays in force, DSN and all; the limits were
    # rebuilt from the 501's (no) keywords, and a DSN RCPT within RFC 3461's allowance heard 500.
    async with running_gateway(relay_config(tmp_path)) as gw:

        def session() -> list[str]:
            with dial(gw.port) as s:
                read_reply(s)
                answers = [say(s, line) for line in ("EHLO x", "EHLO", f"MAIL FROM:<{STAFF}> RET=HDRS")]
                answers.append(say(s, f"RCPT TO:<{RCPT}> NOTIFY=SUCCESS,FAILURE ORCPT={ORCPT}"))
                answers.append(say(s, f"RCPT TO:<{RCPT}> NOTIFY=NEVER ORCPT=rfc822;{'x' * 1000}@example.com"))
                return answers

        answers = await blocking(session)
    assert [a[:3] for a in answers] == ["250", "501", "250", "250", "500"], answers


# ---- a body's long lines in the same write as its DATA -------------------------------------------


def long_line_mail(octets: int) -> bytes:
    """A session in one write whose body has a line of `octets` (an HTML part, a log line)."""
    return one_mail(0, "long line")[: -len(b".\r\n")] + b"start " + b"x" * octets + b"\r\n.\r\nQUIT\r\n"


def sized_config(tmp_path: Path, max_message_bytes: int) -> Any:
    text = config_text(tmp_path, smsc_port=1).replace(
        "[smtp]\n", f"[smtp]\nmax_message_bytes = {max_message_bytes}\n"
    )
    return parse_config(text, source="test config", base_dir=tmp_path)


@pytest.mark.parametrize("half_close", [False, True], ids=["open", "half-closed"])
async def test_a_long_body_line_in_the_same_write_as_data_is_taken(tmp_path: Path, half_close: bool) -> None:
    # A 20,000-octet body line arrived before DATA was run and was held to the command cap (12,288):
    # 421 Command line too long, nothing stored, and the client tried again into the same 421.
    async with running_gateway(relay_config(tmp_path)) as gw:
        answers = await blocking(lambda: script(gw.port, long_line_mail(20_000), half_close=half_close))
        assert codes(answers) == ["250"] * 3 + ["354", "250", "221"], answers
        assert gw.store.admin.count_messages() == 1


async def test_a_held_body_line_over_the_size_limit_is_a_mail_too_big(tmp_path: Path) -> None:
    # A held body line past the size limit (here 20,000 octets) closed the session with
    # `421 Command line too long`: a temporary refusal, so the script tried again into it. It is a
    # mail over the size limit, refused `552` as in a session that waits for the 354, and the
    # session goes on; a line of megabytes is read through, not buffered.
    async with running_gateway(sized_config(tmp_path, 20_000)) as gw:
        answers = await blocking(lambda: script(gw.port, long_line_mail(15_000)))
        assert codes(answers) == ["250"] * 3 + ["354", "250", "221"], answers
        for octets in (30_000, 8_000_000):
            answers = await blocking(lambda n=octets: script(gw.port, long_line_mail(n)))
            assert codes(answers) == ["250"] * 3 + ["354", "552", "221"], answers
            assert replies.too_big(20_000) in answers
        assert gw.store.admin.count_messages() == 1


@pytest.mark.parametrize(
    "flood",
    [
        b"EHLO x\r\nDATA\r\n" + b"x" * 20_000 + b"\r\nNOOP\r\n",  # DATA refused (no MAIL): a command
        b"EHLO x\r\nDATA\r\n" + b"x" * 20_000,  # the same, not yet ended
        b"EHLO x\r\nDATA\r\nNOOP\r\nDATA\r\n" + b"x" * 20_000 + b"\r\n",  # behind a second refused DATA
    ],
    ids=["ended", "unended", "second-data"],
)
async def test_a_long_line_after_a_refused_data_still_closes(tmp_path: Path, flood: bytes) -> None:
    async with running_gateway(relay_config(tmp_path)) as gw:
        answers = await blocking(lambda: script(gw.port, flood))
    assert answers[-1] == replies.LINE_TOO_LONG, answers
