"""A mail client that retries a refused login with its next AUTH mechanism makes one guess, not two.

Python's smtplib (and Thunderbird-style clients) try PLAIN, and on 535 the same login and password
again with LOGIN, in the same session: counted twice, a user's second typo was the third failure and
locked them out, with only "Connection unexpectedly closed" to show. Real smtplib clients talk TLS
to a running gateway on 127.0.0.1.
"""

from __future__ import annotations

import smtplib
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import STAFF, running_gateway
from tests.test_submission import (
    PASSWORD,
    auth_reply,
    b64,
    blocking,
    plain,
    secure,
    submission_config,
    with_password,
)

HERE = "127.0.0.1"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def client_login(port: int, tls: tuple[Path, Path], password: str) -> str:
    """What `smtplib.login` ends with: it tries PLAIN, then LOGIN, and raises the last refusal."""
    with secure(port, tls) as c:
        try:
            code, text = c.login(STAFF, password)
        except smtplib.SMTPAuthenticationError as refused:
            code, text = refused.smtp_code, refused.smtp_error
        except smtplib.SMTPServerDisconnected as gone:
            return f"disconnected: {gone}"
        return auth_reply((code, text))


def login_by_login(c: smtplib.SMTP, password: str) -> str:
    """AUTH LOGIN with its two challenges, as a client that does not send an initial response."""
    first = c.docmd("AUTH", "LOGIN")
    if first[0] != 334:
        return auth_reply(first)
    second = c.docmd(b64(STAFF))
    if second[0] != 334:
        return auth_reply(second)
    return auth_reply(c.docmd(b64(password)))


async def test_smtplib_retrying_a_typo_by_login_counts_it_once(tmp_path: Path, tls_pair: Any) -> None:
    # Two typos, each in a session of its own, are two failures: the login is not locked, the 3rd
    # typo locks it (the documented "3rd failure locks"), and the right password then hears 421.
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
            await with_password(gw)
            port = gw.daemon.submission_port
            guard = gw.daemon.gate.auth
            first = await blocking(lambda: client_login(port, tls_pair, "Wr0ng-1"))
            second = await blocking(lambda: client_login(port, tls_pair, "Wr0ng-2"))
            locked_after_two = guard.pair_locked_for(HERE, STAFF)
            third = await blocking(lambda: client_login(port, tls_pair, "Wr0ng-3"))
            locked_after_three = guard.pair_locked_for(HERE, STAFF)

            def right() -> str:
                with secure(port, tls_pair) as c:
                    return auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, PASSWORD)))

            after = await blocking(right)
    assert first == replies.AUTH_INVALID, first
    assert second == replies.AUTH_INVALID, second
    assert locked_after_two == 0
    assert third != replies.AUTH_INVALID and locked_after_three > 0, third
    assert after == replies.AUTH_LOCKED, after
    events = [e["event"] for e in logs]
    # Each typo is logged once as a failure, and its retry as a repeat (a debug line).
    assert events.count("submission.auth_failed") == 3, events
    assert events.count("submission.auth_repeated") == 2, events
    assert all(f"Wr0ng-{n}" not in repr(e) for e in logs for n in (1, 2, 3))


async def test_a_guesser_switching_mechanisms_with_new_passwords_is_still_locked_at_the_third(
    tmp_path: Path, tls_pair: Any
) -> None:
    # Only an exact repeat of the last failed pair is free: going back to an earlier password (A, B,
    # A) is a new guess, and so is every password tried by the other mechanism.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port

        def alternate() -> list[str]:
            with secure(port, tls_pair) as c:
                return [
                    auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, "guess-a"))),  # 1st
                    login_by_login(c, "guess-a"),  # the retry of that one, free
                    login_by_login(c, "guess-b"),  # 2nd
                    auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, "guess-a"))),  # 3rd: locks
                ]

        answers = await blocking(alternate)

        def alternate_only() -> list[str]:
            with secure(port, tls_pair, source="127.0.0.2") as c:
                return [
                    auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, "guess-c"))),
                    login_by_login(c, "guess-d"),
                    auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, "guess-e"))),
                ]

        others = await blocking(alternate_only)
    assert answers == [replies.AUTH_INVALID] * 3 + [replies.AUTH_LOCKED], answers
    assert others == [replies.AUTH_INVALID] * 2 + [replies.AUTH_LOCKED], others


async def test_the_same_typo_in_a_new_session_counts_again(tmp_path: Path, tls_pair: Any) -> None:
    # The repeat is recognised within one session only: a client reconnecting with the same wrong
    # password is guessing again as far as the locks are concerned.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port

        def sessions() -> list[str]:
            answers = []
            for _ in range(3):
                with secure(port, tls_pair) as c:
                    answers.append(auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, "same-typo"))))
            return answers

        answers = await blocking(sessions)
    assert answers == [replies.AUTH_INVALID] * 2 + [replies.AUTH_LOCKED], answers


async def test_a_password_set_since_the_failure_is_checked_not_taken_for_a_repeat(
    tmp_path: Path, tls_pair: Any
) -> None:
    # The admin sets the password the user kept typing: the user's retry in the same session logs in.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        c: smtplib.SMTP = await blocking(lambda: secure(port, tls_pair))
        try:
            failed = await blocking(
                lambda: auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, "what-i-typed")))
            )
            await with_password(gw, password="what-i-typed")
            retried = await blocking(lambda: login_by_login(c, "what-i-typed"))
        finally:
            await blocking(c.close)
    assert failed == replies.AUTH_INVALID
    assert retried == replies.AUTH_OK, retried
