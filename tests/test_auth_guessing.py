"""Guessing passwords on the submission port: parallel sessions, rotating addresses, locked logins.

Real smtplib clients do STARTTLS and AUTH against the running gateway; the lockout's clock is the
test's, so expiry is checked without waiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.smtp import replies, submitter
from tests.certs import make_cert_pair
from tests.conftest import STAFF, running_gateway
from tests.test_submission import (
    COLLEAGUE,
    PASSWORD,
    acme_user,
    auth_reply,
    blocking,
    plain,
    secure,
    submission_config,
    with_password,
)


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
        return auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, password)))


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
                return auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, f"guess{i}")))
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


def at_once(port: int, tls: tuple[Path, Path], passwords: list[str]) -> list[str]:
    """One session per password from one address, all past STARTTLS, then all AUTH at the same moment."""
    sessions = [secure(port, tls) for _ in passwords]
    try:
        for c, password in zip(sessions, passwords, strict=True):
            c.send(f"AUTH PLAIN {plain(STAFF, password)}\r\n")
        return [auth_reply(c.getreply()) for c in sessions]
    finally:
        for c in sessions:
            c.close()


async def test_parallel_sessions_with_the_right_password_all_get_in(tmp_path: Path, tls_pair: Any) -> None:
    # A connection pool (or an office's PCs behind one NAT) logging in at once: the checks in
    # flight are not failures. Past the pair's three slots they were told 421 "Too many failed
    # authentications" without a single failure.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        answers = await blocking(lambda: at_once(gw.daemon.submission_port, tls_pair, [PASSWORD] * 8))
        assert gw.daemon.gate.auth.locks() == []
    assert answers == [replies.AUTH_OK] * 8


async def test_parallel_wrong_passwords_sent_at_once_still_stop_at_the_limit(
    tmp_path: Path, tls_pair: Any
) -> None:
    # The same burst with wrong passwords: three are checked, the rest wait for them and are locked out.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        guesses = [f"guess{i}" for i in range(8)]
        answers = await blocking(lambda: at_once(gw.daemon.submission_port, tls_pair, guesses))
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


def login(port: int, tls: tuple[Path, Path], who: str, password: str, source: str) -> str:
    with secure(port, tls, source) as c:
        return auth_reply(c.docmd("AUTH", "PLAIN " + plain(who, password)))


async def until(predicate: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_a_flood_of_failures_does_not_lock_out_other_users(tmp_path: Path, tls_pair: Any) -> None:
    # Four addresses guessing made-up logins fill the overall rate.
    # The guessers are told to come back later (454, not a lock); Anna, who logged in from her
    # office before, gets in at once, and so does Ben at an address that never failed; the next
    # fresh address waits its turn (one check per window / cap) instead of being refused.
    cfg = submission_config(tmp_path, 1, tls_pair, auth_max_failures_overall=12)
    async with running_gateway(cfg) as gw:
        await with_password(gw)
        await acme_user(gw, COLLEAGUE)
        port = gw.daemon.submission_port
        guard = gw.daemon.gate.auth
        guard.clock = FakeClock()  # stands still: nothing expires while the test runs
        guard.overall_window = 6  # so the turns past the cap are 0.5 s apart, not 5 s

        def flood() -> tuple[list[str], list[str], float]:
            first = login(port, tls_pair, STAFF, PASSWORD, "127.0.0.1")
            guesses = [
                login(port, tls_pair, f"nobody{n}-{i}@x.example", "guess", f"127.0.0.{80 + n}")
                for i in range(4)
                for n in range(4)
            ]
            after = [
                login(port, tls_pair, STAFF, PASSWORD, "127.0.0.1"),
                login(port, tls_pair, COLLEAGUE, PASSWORD, "127.0.0.99"),
            ]
            started = time.monotonic()
            after.append(login(port, tls_pair, COLLEAGUE, PASSWORD, "127.0.0.98"))
            return [first, *guesses], after, time.monotonic() - started

        before, after, waited = await blocking(flood)
    assert before == [replies.AUTH_OK] + [replies.AUTH_INVALID] * 12 + [replies.AUTH_TEMP_FAILURE] * 4
    assert after == [replies.AUTH_OK] * 3
    assert waited >= 0.5


async def test_a_login_locked_from_elsewhere_still_opens_where_its_owner_logs_in(
    tmp_path: Path, tls_pair: Any
) -> None:
    # Three wrong passwords from each of four addresses lock Anna's
    # login. From the address she logged in from before she still gets in; from a new one the
    # lock holds, and at her own address her own typos still count.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port

        def attack() -> tuple[list[str], list[str]]:
            first = login(port, tls_pair, STAFF, PASSWORD, "127.0.0.1")
            for n in range(4):
                for i in range(3):
                    login(port, tls_pair, STAFF, f"guess{n}-{i}", f"127.0.0.{70 + n}")
            return [first], [
                login(port, tls_pair, STAFF, PASSWORD, "127.0.0.1"),
                login(port, tls_pair, STAFF, PASSWORD, "127.0.0.99"),
                *(login(port, tls_pair, STAFF, f"typo{i}", "127.0.0.1") for i in range(3)),
                login(port, tls_pair, STAFF, PASSWORD, "127.0.0.1"),
            ]

        before, after = await blocking(attack)
        assert gw.daemon.gate.auth.login_locked_for(STAFF) > 0
    assert before == [replies.AUTH_OK]
    assert (
        after
        == [replies.AUTH_OK, replies.AUTH_LOCKED] + [replies.AUTH_INVALID] * 2 + [replies.AUTH_LOCKED] * 2
    )


async def test_a_client_hanging_up_during_the_check_holds_no_slot(
    tmp_path: Path, tls_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A guesser sends AUTH and hangs up while the hash runs (aiosmtpd then cancels the session).
    # The guess is counted when the check ends, like any other: the lock it causes shows in the
    # lock list and ends on time. Dropped, its reservation was held until a restart, so that one
    # hang-up (ten with the default cap) locked the login at every address for good.
    entered, release = threading.Event(), threading.Event()
    real = submitter.verify_password

    def slow(pw: str, stored: str | None) -> bool:
        entered.set()
        release.wait(30)
        return real(pw, stored)

    monkeypatch.setattr(submitter, "verify_password", slow)
    cfg = submission_config(tmp_path, 1, tls_pair, auth_max_failures_per_login=1)
    async with running_gateway(cfg) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        guard = gw.daemon.gate.auth
        clock = FakeClock()
        guard.clock = clock

        def hang_up() -> None:
            c = secure(port, tls_pair, "127.0.0.5")
            c.send(f"AUTH PLAIN {plain(STAFF, 'guess')}\r\n")
            assert entered.wait(30)
            c.close()

        await blocking(hang_up)
        await until(lambda: not gw.daemon.gate.sessions.live)
        release.set()
        await until(lambda: bool(guard.locks()))
        assert [(lock["kind"], lock["login"]) for lock in guard.locks()] == [("login", STAFF)]
        owner = await blocking(lambda: login(port, tls_pair, STAFF, PASSWORD, "127.0.0.1"))
        assert owner == replies.AUTH_LOCKED
        clock.now += 301
        owner = await blocking(lambda: login(port, tls_pair, STAFF, PASSWORD, "127.0.0.1"))
        assert owner == replies.AUTH_OK
