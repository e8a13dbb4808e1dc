"""Both listeners at the edges of the protocol, over real sockets against the running daemon.

The null reverse-path (a bounce from a client's own server, R-1.7; an auto-reply to a premium SMS,
R-4.5), STARTTLS that fails or comes twice, a mail over the size limit on one line (F11), and the
RFC 3463 enhanced status code that every reply to bad input carries (RFC 2034 asks for one on
every reply once ENHANCEDSTATUSCODES is advertised).
"""

from __future__ import annotations

import re
import smtplib
import socket
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.config import parse_config
from gateway.events import GatewayEvents
from gateway.notifier import Notifier
from gateway.premium import handlers
from gateway.smtp import replies
from gateway.smtp.replies import SENDER_NOT_ASCII
from gateway.smtp.servers import NOT_UTF8_PATH
from smsc.base import InboundSms
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, config_text, make_config, running_gateway
from tests.test_session_limits import blocking, closed, dial, read_reply
from tests.test_submission import PASSWORD, plain, secure, submission_config, with_password

RCPT = f"601123456@{DOMAIN}"
PHONE = "+48601123456"
CLIENT = "konkurs@acme.example"
# RFC 3463: class.subject.detail right after the basic code.
ENHANCED = re.compile(r"\d{3}[ -][245]\.\d{1,3}\.\d{1,3} ")
# New replies, spelled out so that the tests also run (and fail) against code without them.
TLS_ALREADY_ACTIVE = "503 5.5.1 TLS already active"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def reply(code_text: tuple[int, bytes]) -> str:
    return f"{code_text[0]} {code_text[1].decode()}"


def ask(s: socket.socket, line: bytes) -> str:
    s.sendall(line + b"\r\n")
    return read_reply(s)


def ehlo(s: socket.socket) -> list[str]:
    s.sendall(b"EHLO client.test\r\n")
    lines = []
    while not (line := read_reply(s)).startswith("250 "):
        lines.append(line)
    return [*lines, line]


# ---- the null reverse-path (MAIL FROM:<>) -------------------------------------------------------


async def test_a_bounce_from_a_trusted_server_is_recorded_and_not_sent(tmp_path: Path) -> None:
    # a client's mail server bounces to the gateway with MAIL FROM:<>. aiosmtpd took the
    # empty sender for "no MAIL yet" and refused every RCPT with 503, so the bounce never arrived.
    bounce = (
        b"From: MAILER-DAEMON@acme.example\r\nTo: " + RCPT.encode() + b"\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n\r\n"
        b"The mail could not be delivered.\r\n"
    )
    async with running_gateway(make_config(tmp_path, smsc_port=1)) as gw:

        def session() -> list[str]:
            with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as c:
                c.ehlo("mx.acme.example")
                return [
                    reply(c.mail("")),
                    reply(c.mail("")),  # <> is a MAIL like any other: a second one is nested
                    reply(c.rcpt(RCPT)),
                    reply(c.data(bounce)),
                ]

        answers = await blocking(session)
        emails = gw.store.db.conn.execute("SELECT mail_from, automatic FROM emails").fetchall()
        messages = gw.store.db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert answers[:3] == [replies.OK_SENDER, "503 5.5.1 Error: nested MAIL command", replies.OK_RCPT]
    assert answers[3].startswith("250 2.0.0 OK: recorded, not sent as SMS (")
    assert len(emails) == 1 and emails[0][0] == "" and "empty envelope sender" in emails[0][1]
    assert messages == 0


def premium_config(tmp_path: Path) -> Any:
    # Only 127.0.0.1 is the client's network: 127.0.0.2 is a mail server anywhere else.
    text = config_text(tmp_path, smsc_port=1, extra='\n[premium]\nnumbers = ["7355"]\n')
    text = text.replace('relay_networks = ["127.0.0.0/8"]', 'relay_networks = ["127.0.0.1/32"]')
    return parse_config(text, source="test config", base_dir=tmp_path)


@pytest.mark.parametrize("source", ["127.0.0.2", "127.0.0.1"], ids=["anywhere", "trusted_network"])
async def test_an_auto_reply_with_a_null_sender_answers_a_premium_sms(tmp_path: Path, source: str) -> None:
    # "an auto-reply on the client's mail server works the same way"; auto-responders send
    # with an empty Return-Path (RFC 3834), and the From address is then the one on the ACL.
    async with running_gateway(premium_config(tmp_path)) as gw:
        store = gw.store
        r = handlers.repo(store)
        account = store.accounts.get_account("acme")
        service = await store.write(lambda: r.add_service("KP123", account.id, CLIENT, [], [CLIENT]))
        await store.write(lambda: r.update_service(service, verified_at=store.clock()))
        events = GatewayEvents(store, Notifier(store, gw.config))
        await events.on_deliver("main", InboundSms(source=PHONE, destination="7355", text="KP123 vote A"))
        token = store.db.conn.execute("SELECT token FROM premium_mo").fetchone()[0]
        auto_reply = (
            f"From: {CLIENT}\r\nTo: premium-{token}@{DOMAIN}\r\nSubject: Auto: KP123\r\n"
            "Auto-Submitted: auto-replied\r\nMessage-ID: <auto1@acme.example>\r\n\r\n"
            "Dziekujemy za glos!\r\n\r\n> vote A\r\n"
        ).encode()

        def session() -> list[str]:
            with smtplib.SMTP("127.0.0.1", gw.port, source_address=(source, 0), timeout=30) as c:
                c.ehlo("mx.acme.example")
                sender = reply(c.mail(""))
                return [sender, reply(c.rcpt(f"premium-{token}@{DOMAIN}")), reply(c.data(auto_reply))]

        answers = await blocking(session)
        sms = store.db.conn.execute("SELECT recipient, source, text FROM messages").fetchall()
        answered = store.db.conn.execute("SELECT state, mail_from FROM premium_answers").fetchall()
    assert answers[:2] == [replies.OK_SENDER, replies.OK_RCPT]
    assert answers[2].startswith("250 2.0.0 OK: queued as ")
    assert sms == [(PHONE, "7355", "Dziekujemy za glos!")]
    assert answered == [("sent", CLIENT)]


# ---- STARTTLS ------------------------------------------------------------------------------------


async def test_a_failed_tls_handshake_is_the_clients_fault(tmp_path: Path, tls_pair: Any) -> None:
    # A scanner (or a client speaking plain text after STARTTLS) is no internal error: one info
    # line, the connection closed, nothing written back in the clear.
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:

            def session() -> tuple[str, bytes]:
                with dial(gw.daemon.submission_port) as s:
                    read_reply(s)
                    ehlo(s)
                    ready = ask(s, b"STARTTLS")
                    s.sendall(b"EHLO this is not a TLS record\r\n" * 4)
                    rest = b""
                    try:
                        while chunk := s.recv(4096):
                            rest += chunk
                    except ConnectionResetError:
                        pass
                    return ready, rest

            ready, rest = await blocking(session)
            await gw.until(lambda: any(e["event"] == "smtp.tls_failed" for e in logs))
    assert ready.startswith("220 ") and rest == b""
    assert [e for e in logs if e["log_level"] in ("error", "critical", "exception")] == []
    (failed,) = [e for e in logs if e["event"] == "smtp.tls_failed"]
    assert failed["log_level"] == "info" and failed["ip"] == "127.0.0.1" and "SSL" in failed["error"]


async def test_starttls_inside_tls_is_refused(tmp_path: Path, tls_pair: Any) -> None:
    # RFC 3207 4.2: no TLS inside TLS; the session goes on over the first one.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)

        def session() -> list[str]:
            with secure(gw.daemon.submission_port, tls_pair) as c:
                again = reply(c.docmd("STARTTLS"))
                assert again == TLS_ALREADY_ACTIVE, again  # else the session is stuck in a handshake
                return [again, reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, PASSWORD))), reply(c.noop())]

        answers = await blocking(session)
    assert answers == [TLS_ALREADY_ACTIVE, replies.AUTH_OK, "250 2.0.0 OK"]


# ---- size ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [4096 + 3, 20_000, 300_000])
async def test_an_oversize_mail_on_one_line_gets_552(tmp_path: Path, tls_pair: Any, length: int) -> None:
    # F11: a line longer than the DATA reader's limit (size limit + 2) makes the mail too big;
    # aiosmtpd called it "500 Line too long", which tells the client nothing about the size.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair, max_message_bytes=4096)) as gw:

        def session() -> list[str]:
            with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as c:
                c.ehlo("client.test")
                c.mail(STAFF)
                c.rcpt(RCPT)
                assert c.docmd("DATA")[0] == 354
                c.send(b"Subject: big\r\n\r\n" + b"y" * length + b"\r\n.\r\n")
                return [reply(c.getreply()), reply(c.noop())]  # the session is still in step

        answers = await blocking(session)
        assert gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0] == 0
    assert answers == [replies.too_big(4096), "250 2.0.0 OK"]


# ---- enhanced status codes -----------------------------------------------------------------------


async def test_both_listeners_advertise_enhancedstatuscodes(tmp_path: Path, tls_pair: Any) -> None:
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:

        def session() -> list[bytes]:
            out = []
            for port in (gw.port, gw.daemon.submission_port):
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
                    c.ehlo("client.test")
                    out.append(c.ehlo_resp or b"")
            with secure(gw.daemon.submission_port, tls_pair) as c:
                out.append(c.ehlo_resp or b"")
            return out

        for resp in await blocking(session):
            assert b"ENHANCEDSTATUSCODES" in resp.splitlines()


NOT_RECOGNIZED = "parameters not recognized or not implemented"
# What aiosmtpd answers to bad input on the relay port, in one session, and the reply expected.
RELAY_DIALOGUE: list[tuple[bytes, str]] = [
    (b"MAIL FROM:<anna@acme.example>", "503 5.5.1 Error: send HELO first"),
    (b"", "500 5.5.2 Error: bad syntax"),
    (b"\xc3\xa9HLO client.test", "500 5.5.2 Error: bad syntax"),
    (b"HELO", "501 5.5.2 Syntax: HELO hostname"),
    (b"EHLO", "501 5.5.2 Syntax: EHLO hostname"),
    (b"EHLO client.test", ""),  # the EHLO reply itself needs none (RFC 2034)
    (b"RCPT TO:<601123456@sms.example.com>", "503 5.5.1 Error: need MAIL command"),
    (b"DATA", "503 5.5.1 Error: need RCPT command"),
    (b"MAIL FROM:", "501 5.5.2 Syntax: MAIL FROM: <address> [SP <mail-parameters>]"),
    (b"MAIL FROM:<anna@acme.example> SMTPUTF8", replies.OK_SENDER),  # offered (RFC 6531)
    (b"RSET", "250 2.0.0 OK"),
    (b"MAIL FROM:<anna@acme.example> SMTPUTF8=yes", "501 5.5.4 Error: SMTPUTF8 takes no arguments"),
    (b"MAIL FROM:<anna@acme.example> BODY=X", "501 5.5.4 Error: BODY can only be one of 7BIT, 8BITMIME"),
    (b"MAIL FROM:<\xc3\xa1nna@acme.example>", SENDER_NOT_ASCII),  # UTF-8: no user's
    (b"MAIL FROM:<\xe1nna@acme.example>", NOT_UTF8_PATH),  # Latin-1, no UTF-8
    (b"MAIL FROM:<anna@acme.example> FOO=1", f"555 5.5.4 MAIL FROM {NOT_RECOGNIZED}"),
    (b"NOOP " + b"a" * 600, "500 5.5.2 Command line too long"),  # 5.5.6 is RFC 4954's, for AUTH
    (b"XYZZY", "500 5.5.1 Error: command not recognized"),  # a client's word is not echoed
    (b"EXPN staff", "502 5.5.1 EXPN not implemented"),
    (b"VRFY", "501 5.5.2 Syntax: VRFY <address>"),
    (b"STARTTLS now", "501 5.5.2 Syntax: STARTTLS"),
    (b"MAIL FROM:<anna@acme.example>", replies.OK_SENDER),
    (b"MAIL FROM:<anna@acme.example>", "503 5.5.1 Error: nested MAIL command"),
    (b"RCPT TO:", "501 5.5.2 Syntax: RCPT TO: <address> [SP <mail-parameters>]"),
    (b"RCPT TO:<601123456@sms.example.com> FOO=1", f"555 5.5.4 RCPT TO {NOT_RECOGNIZED}"),
    (b"RCPT TO:<>", "501 5.1.3 <>: Bad recipient address syntax"),  # was 550 <<>>: Relay access denied
    (b"RCPT TO:<601123456@sms.example.com>", replies.OK_RCPT),
    (b"DATA now", "501 5.5.2 Syntax: DATA"),
    (b"RSET now", "501 5.5.2 Syntax: RSET"),
    (b"RSET", "250 2.0.0 OK"),
    (b"NOOP", "250 2.0.0 OK"),
    (b"QUIT now", "501 5.5.2 Syntax: QUIT"),
    (b"QUIT", "221 2.0.0 Bye"),
]  # fmt: skip


async def test_bad_input_on_the_relay_port_gets_enhanced_codes(tmp_path: Path) -> None:
    async with running_gateway(make_config(tmp_path, smsc_port=1)) as gw:

        def session() -> list[str]:
            with dial(gw.port) as s:
                read_reply(s)
                answers = [
                    ehlo(s)[-1] if line == b"EHLO client.test" else ask(s, line) for line, _ in RELAY_DIALOGUE
                ]
                assert closed(s)
                return answers

        answers = await blocking(session)
    expected = [want or "250 HELP" for _, want in RELAY_DIALOGUE]
    assert answers == expected


async def test_too_many_unknown_commands_close_the_session_with_421(tmp_path: Path) -> None:
    # aiosmtpd said "502 5.5.1 ... goodbye." and hung up: a client reads a 5xx as that command's
    # failure; a server closing the channel says 421 (RFC 5321 3.8).
    async with running_gateway(make_config(tmp_path, smsc_port=1)) as gw:

        def session() -> list[str]:
            with dial(gw.port) as s:
                read_reply(s)
                answers = [ask(s, line) for line in (b"XYZZY", b"BDAT 1", b"TURN", b"ETRN x", b"\x01\x02")]
                assert closed(s)
                return answers

        answers = await blocking(session)
    assert [a[:3] for a in answers[:4]] == ["500"] * 4
    assert answers[4] == "421 4.7.0 Too many unrecognized commands, closing connection"


async def test_help_and_vrfy_replies_carry_enhanced_codes(tmp_path: Path) -> None:
    async with running_gateway(make_config(tmp_path, smsc_port=1)) as gw:

        def session() -> list[str]:
            with dial(gw.port) as s:
                read_reply(s)
                ehlo(s)
                lines = (b"HELP", b"HELP MAIL", b"HELP XYZZY", b"VRFY <anna@acme.example>")
                return [ask(s, line) for line in lines]

        answers = await blocking(session)
    assert all(ENHANCED.match(a) for a in answers), answers
    assert [a[:3] for a in answers] == ["250", "250", "501", "252"]
    assert answers[1] == "250 2.0.0 Syntax: MAIL FROM: <address> [SP <mail-parameters>]"


async def test_auth_replies_carry_enhanced_codes(tmp_path: Path, tls_pair: Any) -> None:
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        port = gw.daemon.submission_port

        def session() -> list[str]:
            with secure(port, tls_pair) as c:
                answers = [reply(c.docmd("AUTH")), reply(c.docmd("AUTH", "PLAIN a b"))]
                c.helo("client.test")  # AUTH is an extension: after HELO it does not exist
                answers.append(reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, "x"))))
            return answers

        answers = await blocking(session)
    assert answers == [
        "501 5.5.2 Not enough value",
        "501 5.5.2 Too many values",
        "500 5.5.1 Error: command 'AUTH' not recognized",
    ]


@pytest.mark.parametrize("length", [380, 9000])
async def test_a_long_auth_plain_line_is_read(tmp_path: Path, tls_pair: Any, length: int) -> None:
    # RFC 4954 4: an AUTH line may be 12288 octets, not the 512 of other commands (guard.py).
    password = "p" * length
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw, STAFF, password)

        def session() -> list[str]:
            out = []
            for attempt in ("q" * length, password):
                with secure(gw.daemon.submission_port, tls_pair) as c:
                    out.append(reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, attempt))))
            return out

        answers = await blocking(session)
    assert answers == [replies.AUTH_INVALID, replies.AUTH_OK]
