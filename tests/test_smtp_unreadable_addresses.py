"""Addresses the email package's grammar cannot read are malformed addresses, not faults of the daemon.

Defect: `MAIL FROM:x@`, `MAIL FROM:"a"@`, `RCPT TO:x@` and `RCPT TO:"601123456"@` (no angle brackets,
an empty domain) made the stdlib's address grammar raise IndexError, which aiosmtpd does not catch
(it catches HeaderParseError only): each line was answered `451 4.3.0` and logged an
`smtp.internal_error` with a 1.6 kB traceback, as often as anyone reaching the port cared to send
one (MAIL is read before the sender is checked): 240 lines a connection, 8 MB of log in 4 s from 21
connections. The grammar also raised AttributeError and UnboundLocalError on other lines, and VRFY
reads its argument the same way. They are now `553 5.1.3`, as `<x@>` is.

Each such `553 5.1.3` was aiosmtpd's `Error: malformed address`, for `<@>`, `<a@b@c>` and
`<[=@sms.example.com>` alike: it now names the path and what is wrong with it (`badpath`).

Against the real daemon process (the relay port in the daemon and in an intake process) with raw
SMTP clients: the four lines above and a few hundred generated MAIL, RCPT, VRFY, EHLO and HELO
lines on the relay port, AUTH lines after STARTTLS on the submission port. No line may make an
internal error, and every reply is a 2xx or 5xx with an enhanced status code (EHLO's and HELO's
250 excepted: RFC 2034 gives them none).
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import ssl
from pathlib import Path

import pytest
import structlog
from aiosmtpd.smtp import SMTP

from gateway.smtp import replies, servers
from tests.conftest import STAFF, free_port, make_config, running_gateway
from tests.test_intake_workers import log_events, stop
from tests.test_process import start_daemon, write_config

EMPTY_DOMAIN = ["MAIL FROM:x@", 'MAIL FROM:"a"@', "RCPT TO:x@", 'RCPT TO:"601123456"@']
# Lines the grammar failed on in other ways (AttributeError, UnboundLocalError), and VRFY's reading.
OTHER_FAILURES = ["MAIL FROM:+a.b#@ [<", "MAIL FROM:\\@[\t", "VRFY x@", "VRFY \\@[\t"]
EMPTY_DOMAIN_SAID = [
    "553 5.1.3 <x@>: Address not valid: no domain after the @",
    '553 5.1.3 <"a"@>: Address not valid: no domain after the @',
    "553 5.1.3 <x@>: Address not valid: no domain after the @",
    '553 5.1.3 <"601123456"@>: Address not valid: no domain after the @',
]
# What the sender reads for each path, as MAIL's and as RCPT's.
SAID = {
    "<@>": "553 5.1.3 <@>: Address not valid: nothing before the @",
    "<a@b@c>": "553 5.1.3 <a@b@c>: Address not valid: it has more than one @ (a local part holding one is"
    " written in quotes)",
    "<[=@sms.example.com>": "553 5.1.3 <[=@sms.example.com>: Address not valid: its local part holds '[',"
    " which only a quoted local part may hold",
    "<x@>": "553 5.1.3 <x@>: Address not valid: no domain after the @",
}
SENDER = STAFF  # an ACL'd sender, so that RCPT lines reach the parser
_PIECES = [
    "<", ">", "@", '"', "\\", ":", ",", "%", "!", " ", "\t", "=", "+", "(", ")", "[", "]", ";", ".", "..",
    "601123456", "sms.example.com", SENDER, "x@", '"a"@', "x", "\x7f", "ż", "#", "'", "0", "xn--",
    "SIZE=", "SIZE=9", "BODY=8BITMIME", "BODY=", "SMTPUTF8", "SMTPUTF8=x", "NOTIFY=", "NOTIFY=NEVER,SUCCESS",
    "ORCPT=", "ORCPT=rfc822;", "+2B", "+Z", "RET=", "RET=HDRS", "ENVID=", "AUTH=", "AUTH=<>",
    "postmaster", "info", "=?utf-8?q?a?=", "[1.2.3.4]", "[IPv6:::1]", "\x01",
]  # fmt: skip
# After STARTTLS: mechanisms and arguments that are no login (a wrong password would count towards
# the address's lockout, whose 4xx is another matter).
_AUTH_PIECES = [
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "=",
    "==",
    "*",
    "====",
    " ",
    "\t",
    "@",
    "ż",
    "\x01",
    "x",
    "\x00",
]
ENHANCED = re.compile(r"[25]\d\d [25]\.\d{1,3}\.\d{1,3} ")
# Fresh connection every so many lines: the guard closes a session that sends too many commands
# without a mail (`max_commands_without_mail`), which is no answer to the line being tried.
LINES_PER_SESSION = 40


def relay_lines(seed: int, count: int) -> list[str]:
    """MAIL, RCPT, VRFY, EHLO and HELO lines with arguments made of address and parameter pieces."""
    rng = random.Random(seed)

    def pieces(most: int) -> str:
        return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, most)))

    lines = []
    for _ in range(count):
        verb = rng.choice(["MAIL FROM:", "RCPT TO:", "VRFY ", "EHLO ", "HELO "])
        shape = rng.random()
        if shape < 0.3:
            arg = pieces(10)
        elif shape < 0.6:
            arg = f"<{pieces(10)}>" + rng.choice(["", " " + pieces(4)])
        else:  # unbracketed, with something odd where the domain goes
            arg = pieces(4) + rng.choice(["@", "@@", '@"', "@[", "@(", "@<"]) + pieces(3)
        lines.append(verb + arg)
    return lines


def auth_lines(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [
        "AUTH " + "".join(rng.choice(_AUTH_PIECES) for _ in range(rng.randint(0, 6))) for _ in range(count)
    ]


class Session:
    """A raw SMTP client that reads each reply whole (its last line is what counts)."""

    def __init__(self, port: int, tls: bool) -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.file = self.sock.makefile("rb")
        self.reply()
        self.say("EHLO fuzz.example")
        if tls:
            assert self.say("STARTTLS").startswith("220"), "no STARTTLS"
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the daemon's own self-signed certificate
            self.sock = context.wrap_socket(self.sock)
            self.file = self.sock.makefile("rb")
            self.say("EHLO fuzz.example")

    def reply(self) -> str:
        while line := self.file.readline().decode("utf-8", "replace"):
            if line[3:4] != "-":
                return line.rstrip("\r\n")
        return "<closed>"

    def say(self, line: str) -> str:
        self.sock.sendall(line.encode("utf-8", "surrogateescape") + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.sock.close()


def answers(port: int, lines: list[str], tls: bool = False) -> list[tuple[str, str]]:
    """Each line with its reply; RCPT after a MAIL of its own, every transaction reset after."""
    got: list[tuple[str, str]] = []
    session: Session | None = None
    for i, line in enumerate(lines):
        if session is None or i % LINES_PER_SESSION == 0:
            if session is not None:
                session.close()
            session = Session(port, tls)
        if line.startswith("RCPT"):
            assert session.say(f"MAIL FROM:<{SENDER}>").startswith("250")
        answer = session.say(line)
        while answer.startswith("334"):  # AUTH's challenge: cancelled (RFC 4954 4)
            answer = session.say("*")
        got.append((line, answer))
        if answer.startswith("421") or answer == "<closed>":
            session.close()
            session = None
        elif line.startswith(("MAIL", "RCPT")):
            session.say("RSET")
    if session is not None:
        session.close()
    return got


def odd(got: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The replies that are neither a 2xx/5xx with an enhanced code nor EHLO's or HELO's 250."""
    return [
        (line, answer)
        for line, answer in got
        if not ENHANCED.match(answer) and not (line.startswith(("EHLO", "HELO")) and answer.startswith("250"))
    ]


@pytest.mark.parametrize("workers", [0, 1], ids=["in-daemon", "intake-process"])
async def test_unreadable_addresses_are_malformed_and_log_no_internal_error(
    tmp_path: Path, workers: int
) -> None:
    smtp_port, submission_port = free_port(), free_port()
    config = write_config(tmp_path, free_port(), smtp_port, intake_processes=workers)
    text = config.read_text()
    config.write_text(text.replace('"127.0.0.1:0"', f'"127.0.0.1:{submission_port}"', 1))
    proc = await start_daemon(config, smtp_port)
    try:
        known = await asyncio.to_thread(answers, smtp_port, EMPTY_DOMAIN + OTHER_FAILURES)
        relay = await asyncio.to_thread(answers, smtp_port, relay_lines(seed=5321, count=300))
        auth = await asyncio.to_thread(answers, submission_port, auth_lines(seed=4954, count=100), True)
    finally:
        await stop(proc)  # every line the daemon and its worker wrote is in the log now
    assert [answer for _line, answer in known[:4]] == EMPTY_DOMAIN_SAID, known
    assert odd(known + relay + auth) == []
    assert {answer[:3] for _line, answer in relay} >= {"250", "553"}  # the lines did reach the parser
    errors = log_events(tmp_path, "smtp.internal_error")
    assert errors == [], [e.get("error") for e in errors]


async def test_a_fault_a_client_can_repeat_logs_a_line_a_minute_with_one_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever fault a client's line may yet reach, it must not flood the journal: the address
    # grammar's own failures are put back as they were (aiosmtpd's parser, unguarded) to stand for
    # such a fault. Three connections repeat two of them; each kind of fault (type and the line
    # that raised it) logs its first line with the traceback, and the rest are counted in it
    # (`suppressed`, said at the stop), so that the lines still add up to every fault.
    monkeypatch.setattr(servers.GatewaySMTP, "_getaddr", lambda self, arg: SMTP._getaddr(self, arg))
    port = free_port()
    per_session = {"MAIL FROM:x@": 20, "MAIL FROM:+a.b#@ [<": 10}  # IndexError, AttributeError
    lines = [line for line, times in per_session.items() for _ in range(times)]
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(make_config(tmp_path, smsc_port=free_port(), smtp_port=port)):
            got = [await asyncio.to_thread(answers, port, lines) for _ in range(3)]
    assert {answer for session in got for _line, answer in session} == {replies.TEMP_FAILURE}
    errors = [e for e in logs if e["event"] == "smtp.internal_error"]
    assert len(errors) == 4, f"{len(errors)} lines for 90 faults of two kinds"
    by_kind: dict[str, list[dict[str, object]]] = {}
    for e in errors:
        by_kind.setdefault(str(e["at"]), []).append(e)
    assert len(by_kind) == 2, list(by_kind)
    for kind, said in by_kind.items():
        expected = 3 * per_session["MAIL FROM:x@" if "IndexError" in kind else "MAIL FROM:+a.b#@ [<"]
        assert len(said) == 2, said  # the first, and the count held back
        assert "exc_info" in said[0] and "exc_info" not in said[1]
        assert len(said) - 1 + sum(int(str(e["suppressed"])) for e in said) == expected


async def test_an_unreadable_path_is_refused_naming_what_is_wrong(tmp_path: Path) -> None:
    port = free_port()
    lines = [f"{verb}{path}" for path in SAID for verb in ("MAIL FROM:", "RCPT TO:")]
    async with running_gateway(make_config(tmp_path, smsc_port=free_port(), smtp_port=port)):
        got = await asyncio.to_thread(answers, port, lines)
    assert got == [(line, SAID[line.partition(":")[2]]) for line in lines]
