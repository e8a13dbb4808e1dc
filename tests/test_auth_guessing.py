"""Guessing passwords on the submission port: parallel sessions, rotating addresses, locked logins.

Real smtplib clients do STARTTLS and AUTH against the running gateway; the lockout's clock is the
test's, so expiry is checked without waiting.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import STAFF, running_gateway
from tests.test_submission import PASSWORD, blocking, plain, reply, secure, submission_config, with_password


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


class FakeClock:
    """Monotonic time that only moves when the test says; starts at the real value so it can be swapped in."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def guess(port: int, tls: tuple[Path, Path], password: str, source: str = "127.0.0.1") -> str:
    with secure(port, tls, source) as c:
        return reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, password)))


async def test_parallel_sessions_get_no_more_answers_than_the_limit(tmp_path: Path, tls_pair: Any) -> None:
    # 40 sessions from one address, all logged in to STARTTLS first, then all guess at once: the
    # guesses in flight count, so at most the limit get 535 and the rest are locked out unchecked.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        sessions = 40
        ready = threading.Barrier(sessions)

        def one(i: int) -> str:
            c = secure(port, tls_pair)
            try:
                ready.wait(timeout=60)
                return reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, f"guess{i}")))
            finally:
                c.close()

        def attack() -> list[str]:
            results: list[str] = [""] * sessions

            def run(i: int) -> None:
                results[i] = one(i)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(sessions)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(90)
            return results

        answers = await blocking(attack)
    assert answers.count(replies.AUTH_INVALID) <= gw.config.smtp.auth_max_failures
    assert set(answers) == {replies.AUTH_INVALID, replies.AUTH_LOCKED}


async def test_rotating_addresses_cannot_get_past_the_login_limit(tmp_path: Path, tls_pair: Any) -> None:
    # Two guesses each from 20 addresses stay under every per-address and per-pair limit; the
    # login's own limit across addresses still holds, and the right password from a fresh address
    # then gets the locked answer.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port

        def attack() -> tuple[list[str], str]:
            answers = [
                guess(port, tls_pair, f"guess{n}-{i}", source=f"127.0.0.{10 + n}")
                for n in range(20)
                for i in range(2)
            ]
            return answers, guess(port, tls_pair, PASSWORD, source="127.0.0.99")

        answers, right = await blocking(attack)
    assert answers.count(replies.AUTH_INVALID) < gw.config.smtp.auth_max_failures_per_login == 10
    assert answers.count(replies.AUTH_LOCKED) == 40 - 9
    assert right == replies.AUTH_LOCKED


async def test_a_locked_login_answers_the_same_for_right_and_wrong_passwords(
    tmp_path: Path, tls_pair: Any
) -> None:
    # The reply must not tell a guesser they found it; after the lockout time the owner gets in.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port

        def attack() -> list[str]:
            for n in range(gw.config.smtp.auth_max_failures_per_login):
                guess(port, tls_pair, f"guess{n}", source=f"127.0.0.{20 + n}")
            return [
                guess(port, tls_pair, PASSWORD, source="127.0.0.40"),
                guess(port, tls_pair, "still-wrong", source="127.0.0.41"),
            ]

        right, wrong = await blocking(attack)
        assert right == wrong == replies.AUTH_LOCKED
        clock = FakeClock()
        gw.daemon.gate.auth.clock = clock

        def owner() -> str:
            return guess(port, tls_pair, PASSWORD, source="127.0.0.42")

        assert await blocking(owner) == replies.AUTH_LOCKED
        clock.now += 301
        assert await blocking(owner) == replies.AUTH_OK


async def test_a_locked_pair_answers_the_same_for_right_and_wrong_passwords(
    tmp_path: Path, tls_pair: Any
) -> None:
    # The mistyper's lock at their own address hints at nothing either.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port

        def attack() -> list[str]:
            answers = [guess(port, tls_pair, f"guess{n}") for n in range(3)]
            return [*answers, guess(port, tls_pair, PASSWORD), guess(port, tls_pair, "still-wrong")]

        answers = await blocking(attack)
    assert answers == [replies.AUTH_INVALID] * 2 + [replies.AUTH_LOCKED] * 3
