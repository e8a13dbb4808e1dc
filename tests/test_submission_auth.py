# ruff: noqa: F811  (the tests take test_submission's `tls_pair` fixture, imported by name)
"""AUTH on the submission port: lowercase commands work, malformed AUTH gets an answer and the session
goes on, bad credentials all get the same 535, one mistyping person does not lock out the office
while many failures from one address lock that address, passwords never reach the logs, and the
password check runs off the event loop. Real smtplib clients over TLS to a running gateway, as in
test_submission.py; split from it by subject (it was over 400 lines)."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import threading
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.smtp import replies, submitter
from gateway.smtp.sessionlimits import COMMAND_LINE_CAP
from tests.conftest import STAFF, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_submission import (
    COLLEAGUE,
    PASSWORD,
    RCPT,
    acme_user,
    auth_reply,
    b64,
    blocking,
    plain,
    reply,
    secure,
    submission_config,
    tls_pair,  # noqa: F401  (the fixture)
    with_password,
)


async def test_lowercase_auth_commands_work(tmp_path: Path, tls_pair: Any) -> None:
    # aiosmtpd #305: `auth login` and `auth plain` are the same commands as their uppercase forms.
    cfg = submission_config(tmp_path, 1, tls_pair)
    async with running_gateway(cfg) as gw:
        await with_password(gw)

        def session() -> list[str]:
            with secure(gw.daemon.submission_port, tls_pair) as c:
                steps = [
                    reply(c.docmd("auth", "login")),
                    reply(c.docmd(b64(STAFF))),
                    reply(c.docmd(b64(PASSWORD))),
                ]
            with secure(gw.daemon.submission_port, tls_pair) as c:
                steps.append(reply(c.docmd("auth", "plain " + plain(STAFF, PASSWORD))))
            return steps

        answers = await blocking(session)
    assert answers == ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", replies.AUTH_OK, replies.AUTH_OK]


async def test_malformed_auth_gets_an_answer_and_the_session_goes_on(tmp_path: Path, tls_pair: Any) -> None:
    # Garbage in AUTH is answered with 5xx, is not a crash, and a correct login still works afterwards.
    cfg = submission_config(tmp_path, 1, tls_pair, auth_max_failures=10)
    async with running_gateway(cfg) as gw:
        await with_password(gw)

        def session() -> list[int]:
            with secure(gw.daemon.submission_port, tls_pair) as c:
                codes = [
                    c.docmd("AUTH")[0],
                    c.docmd("AUTH", "CRAM-MD5")[0],
                    c.docmd("AUTH", "XOAUTH2 abc")[0],
                ]
                codes += [
                    c.docmd("AUTH", "PLAIN !!!notbase64")[0],
                    c.docmd("AUTH", "PLAIN " + b64("no-nuls"))[0],
                ]
                # A login and a password that are not UTF-8, then a client giving up at the challenge.
                codes += [c.docmd("AUTH", "LOGIN " + b64(b"\xff\xfe"))[0], c.docmd(b64(b"\x80\x81"))[0]]
                codes += [c.docmd("AUTH", "PLAIN")[0], c.docmd("*")[0]]
                codes += [c.login(STAFF, PASSWORD)[0], c.docmd("AUTH", "PLAIN " + plain(STAFF, PASSWORD))[0]]
                return codes

        codes = await blocking(session)
    assert codes == [501, 504, 504, 501, 501, 334, 535, 334, 501, 235, 503]


async def test_bad_credentials_all_get_the_same_535(tmp_path: Path, tls_pair: Any) -> None:
    # Wrong password, unknown user, user without password, foreign authzid: one answer, nothing revealed.
    cfg = submission_config(tmp_path, 1, tls_pair, auth_max_failures=10)
    async with running_gateway(cfg) as gw:
        await with_password(gw)
        await gw.store.write(lambda: gw.store.accounts.add_user(COLLEAGUE, "acme"))  # no password set

        def session() -> list[str]:
            with secure(gw.daemon.submission_port, tls_pair) as c:
                return [
                    auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, "wrong-password"))),
                    auth_reply(c.docmd("AUTH", "PLAIN " + plain("nobody@acme.example", PASSWORD))),
                    auth_reply(c.docmd("AUTH", "PLAIN " + plain(COLLEAGUE, ""))),
                    auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, PASSWORD, authzid=COLLEAGUE))),
                    reply(c.docmd("MAIL", f"FROM:<{STAFF}>")),
                ]

        answers = await blocking(session)
    assert answers == [replies.AUTH_INVALID] * 4 + [replies.AUTH_REQUIRED]


async def test_one_mistyping_person_does_not_lock_out_the_office(tmp_path: Path, tls_pair: Any) -> None:
    # F12 behind a NAT: Anna's 3rd bad AUTH gets 421 and a closed connection, and from then on her
    # login at that address gets 421 whether the password is right or not; Ben, at the same
    # address, logs in and sends as usual.
    async with HappySMSC() as smsc, running_gateway(submission_config(tmp_path, smsc.port, tls_pair)) as gw:
        await with_password(gw)
        await acme_user(gw, COLLEAGUE)
        port = gw.daemon.submission_port

        def office() -> tuple[list[str], tuple[int, bytes]]:
            with secure(port, tls_pair) as c:
                answers = [
                    auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, f"guess{i}"))) for i in range(3)
                ]
                with pytest.raises(smtplib.SMTPServerDisconnected):
                    c.noop()
            for password in (PASSWORD, "guess4"):
                with secure(port, tls_pair) as c:
                    answers.append(auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, password))))
            with secure(port, tls_pair) as c:
                ben = c.login(COLLEAGUE, PASSWORD)
                c.send_message(mail(RCPT, "Sent from the same office"), COLLEAGUE, [RCPT])
            return answers, ben

        answers, ben = await blocking(office)
        assert answers == [replies.AUTH_INVALID] * 2 + [replies.AUTH_LOCKED] * 3
        assert ben[0] == 235
        await smsc.wait_for(1)


async def test_many_failed_logins_from_one_address_lock_the_address(tmp_path: Path, tls_pair: Any) -> None:
    # Past the per-address cap (several logins, each under its own cap) the address is refused at
    # AUTH, the right password of a login that never logged in from there too; the same logins from
    # another address are not affected.
    cfg = submission_config(tmp_path, 1, tls_pair, auth_max_failures_per_address=4)
    async with running_gateway(cfg) as gw:
        await with_password(gw)
        await acme_user(gw, COLLEAGUE)
        port = gw.daemon.submission_port

        def attack() -> list[str]:
            with secure(port, tls_pair) as c:
                answers = [
                    auth_reply(c.docmd("AUTH", "PLAIN " + plain(who, f"guess{i}")))
                    for i in range(2)
                    for who in (STAFF, COLLEAGUE)
                ]
            with secure(port, tls_pair) as c:
                answers.append(auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, PASSWORD))))
            with secure(port, tls_pair, source="127.0.0.2") as c:
                answers.append(auth_reply(c.docmd("AUTH", "PLAIN " + plain(COLLEAGUE, PASSWORD))))
            return answers

        answers = await blocking(attack)
    assert answers == [replies.AUTH_INVALID] * 3 + [replies.AUTH_LOCKED] * 2 + [replies.AUTH_OK]


async def test_passwords_never_reach_the_logs(
    tmp_path: Path, tls_pair: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Neither our structured log nor aiosmtpd's debug log shows a password, plain or base64.
    wrong = "Wr0ng-but-secret"
    other = "0ther-Wr0ng-secret"  # a new guess: the same pair again would be a repeat, not checked
    cfg = submission_config(tmp_path, 1, tls_pair)
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            await with_password(gw)

            def session() -> None:
                with secure(gw.daemon.submission_port, tls_pair) as c:
                    c.docmd("AUTH", "PLAIN " + plain(STAFF, wrong))
                    c.docmd("AUTH", "LOGIN " + b64(STAFF))
                    c.docmd(b64(other))
                    c.login(STAFF, PASSWORD)

            await blocking(session)
    events = [e["event"] for e in logs]
    assert events.count("submission.auth_failed") == 2 and "submission.auth_ok" in events
    text = repr(logs) + caplog.text
    assert "login_data is deprecated" not in caplog.text  # aiosmtpd's noise on every login is dropped
    for secret in (PASSWORD, wrong, other, b64(PASSWORD), b64(wrong), b64(other), plain(STAFF, PASSWORD)):
        assert secret not in text
    assert plain(STAFF, wrong) not in text


async def test_password_check_runs_off_the_event_loop(
    tmp_path: Path, tls_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # scrypt is slow on purpose; on the loop thread it would stall every other session.
    threads: list[threading.Thread] = []
    real = submitter.verify_password

    def spy(pw: str, stored: str | None) -> bool:
        threads.append(threading.current_thread())
        return real(pw, stored)

    monkeypatch.setattr(submitter, "verify_password", spy)
    cfg = submission_config(tmp_path, 1, tls_pair)
    async with running_gateway(cfg) as gw:
        await with_password(gw)

        def session() -> tuple[int, bytes]:
            with secure(gw.daemon.submission_port, tls_pair) as c:
                return c.login(STAFF, PASSWORD)

        assert (await blocking(session))[0] == 235
    assert threads and all(t is not threading.main_thread() for t in threads)


def read_to_end(sock: Any) -> bytes:
    """Everything the server writes until it closes the connection."""
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except OSError:  # a reset, or TLS cut without its close_notify: closed all the same
        pass
    return got


async def test_lines_pipelined_behind_a_lockout_are_neither_run_nor_answered(
    tmp_path: Path, tls_pair: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The lockout's 421 closed the channel and aiosmtpd went on with the lines the client had written
    # behind it: the answers written to the closed TLS channel raised AttributeError, logged at error
    # level with a traceback (smtp.internal_error, aiosmtpd's "Exception in handle_exception()"),
    # and a guess at another login among those lines was checked and counted, never answered.
    caplog.set_level(logging.INFO)
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
            await with_password(gw)
            await gw.store.write(lambda: gw.store.accounts.add_user(COLLEAGUE, "acme"))
            port, live = gw.daemon.submission_port, gw.daemon.gate.sessions.live
            hold = threading.Event()

            def session() -> bytes:
                with secure(port, tls_pair) as c:
                    lines = [f"AUTH PLAIN {plain(STAFF, f'guess{i}')}" for i in range(3)]
                    lines += ["NOOP", f"AUTH PLAIN {plain(COLLEAGUE, 'guess')}", "NOOP"]
                    c.sock.sendall("".join(line + "\r\n" for line in lines).encode())
                    got = read_to_end(c.sock)
                    hold.wait(30)  # the connection stays: the session must end of itself
                    return got

            client = asyncio.ensure_future(blocking(session))
            while not live and not client.done():
                await asyncio.sleep(0.01)
            tasks = [s._handler_coroutine for s in live]
            for _ in range(300):  # until the session's task ends (a bound, not a timing): 3 s at most
                if client.done() or all(t is not None and t.done() for t in tasks):
                    break
                await asyncio.sleep(0.01)
            ended = all(t is not None and t.done() for t in tasks)
            hold.set()
            got = (await client).decode()
    assert [line[:3] for line in got.split("\r\n")] == ["535", "535", "421", ""], got
    assert got.split("\r\n")[2].startswith(replies.AUTH_LOCKED)
    assert ended
    assert [e.get("login") for e in logs if e["event"] == "submission.auth_failed"] == [STAFF] * 3
    assert [e for e in logs if e.get("log_level") in ("error", "critical")] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_an_auth_answer_over_the_line_cap_is_no_wrong_password(tmp_path: Path, tls_pair: Any) -> None:
    # A 334's answer past the 12,288-octet cap ends the input there, and the empty read that followed
    # was checked as a password: 535, then the cap's 421, and a "wrong password" counted for the user
    # (three locked them out at that address). At the user-name prompt it even got the password one.
    long_line = b"A" * (COMMAND_LINE_CAP + 100) + b"\r\n"
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
            await with_password(gw)
            port = gw.daemon.submission_port

            def sessions() -> tuple[list[str], str]:
                answers = []
                for command in ["LOGIN " + b64(STAFF)] * 3 + ["LOGIN", "PLAIN"]:
                    with secure(port, tls_pair) as c:
                        assert c.docmd("AUTH", command)[0] == 334
                        c.sock.sendall(long_line)
                        answers.append(read_to_end(c.sock).decode())
                try:
                    with secure(port, tls_pair) as c:
                        return answers, reply(c.login(STAFF, PASSWORD))
                except smtplib.SMTPException as exc:  # locked out: 421 and the close
                    return answers, repr(exc)

            answers, login = await blocking(sessions)
    assert answers == [replies.LINE_TOO_LONG + "\r\n"] * 5
    assert login == replies.AUTH_OK
    assert [e for e in logs if e["event"] in ("submission.auth_failed", "submission.locked_out")] == []
