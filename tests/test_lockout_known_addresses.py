"""The addresses a login succeeded from lately survive a restart of the daemon.

The per-login lock (10 failures from any addresses) spares the clients its owner logged in from in
the last 30 days (README). Held in memory only, that list was empty after a restart, so anyone who
knew a login could lock its owner out at their own office. Real smtplib clients do STARTTLS and
AUTH PLAIN on the submission port of a real daemon, which is stopped and started again on the same
database between the owner's login and the guessing.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.smtp import replies
from tests.conftest import STAFF, running_gateway
from tests.test_auth_guessing import login, until
from tests.test_submission import PASSWORD, blocking, submission_config, with_password

DAY = 86400.0


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tests.certs import make_cert_pair

    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def rows(path: Path) -> list[tuple[str, str, float]]:
    """The known-good pairs on disk, read by a connection of the test's own (the daemon is stopped)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT login, address, last_at FROM auth_known_good ORDER BY address").fetchall()
    finally:
        conn.close()


def guess_from_elsewhere(port: int, tls: tuple[Path, Path]) -> list[str]:
    """Ten wrong passwords for the owner's login, two from each of five addresses: the login's cap,
    and under the cap of each (address, login) pair (3)."""
    return [login(port, tls, STAFF, f"guess{n}-{i}", f"127.0.0.{70 + n}") for n in range(5) for i in range(2)]


async def owner_logs_in(tmp_path: Path, tls: tuple[Path, Path]) -> Path:
    """First run of the daemon: the owner logs in from 127.0.0.1 and the success is on disk."""
    async with running_gateway(submission_config(tmp_path, 1, tls)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        assert await blocking(lambda: login(port, tls, STAFF, PASSWORD, "127.0.0.1")) == replies.AUTH_OK
        path = Path(gw.store.path)
    return path


async def test_the_owners_address_still_opens_a_login_locked_after_a_restart(
    tmp_path: Path, tls_pair: Any
) -> None:
    path = await owner_logs_in(tmp_path, tls_pair)
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        port = gw.daemon.submission_port

        def attack() -> tuple[list[str], list[str]]:
            guesses = guess_from_elsewhere(port, tls_pair)
            return guesses, [
                login(port, tls_pair, STAFF, PASSWORD, "127.0.0.1"),  # the owner's office
                login(port, tls_pair, STAFF, PASSWORD, "127.0.0.99"),  # an address never used
            ]

        guesses, after = await blocking(attack)
        assert gw.daemon.gate.auth.login_locked_for(STAFF) > 0
    assert guesses == [replies.AUTH_INVALID] * 9 + [replies.AUTH_LOCKED]
    assert after == [replies.AUTH_OK, replies.AUTH_LOCKED]
    assert [(who, address) for who, address, _ in rows(path)] == [(STAFF, "127.0.0.1")]


async def test_an_address_last_used_over_30_days_ago_is_not_spared(tmp_path: Path, tls_pair: Any) -> None:
    # The owner's success is on disk but 31 days old: after the restart it counts for nothing, and
    # the start deletes its row with every other past 30 days.
    path = await owner_logs_in(tmp_path, tls_pair)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE auth_known_good SET last_at = last_at - ?", (31 * DAY,))
        # and a few chunks' worth of other old pairs, which the start deletes chunk by chunk
        conn.executemany(
            "INSERT INTO auth_known_good (login, address, last_at) VALUES (?, '10.0.0.1', ?)",
            [(f"user{i}@old.example", time.time() - 40 * DAY) for i in range(1200)],
        )
    conn.close()
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        port = gw.daemon.submission_port

        def attack() -> str:
            guess_from_elsewhere(port, tls_pair)
            return login(port, tls_pair, STAFF, PASSWORD, "127.0.0.1")

        assert await blocking(attack) == replies.AUTH_LOCKED
        await until(lambda: not rows(path))


async def test_a_success_is_written_once_a_day_not_at_every_login(tmp_path: Path, tls_pair: Any) -> None:
    # A mailbox polled every minute: the pair is written at its first success, and the next ones
    # within a day leave the row as it is (no write per login).
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        conn = gw.store.db.conn

        def written() -> list[tuple[str, str, float]]:
            return conn.execute("SELECT login, address, last_at FROM auth_known_good").fetchall()

        assert await blocking(lambda: login(port, tls_pair, STAFF, PASSWORD, "127.0.0.1")) == replies.AUTH_OK
        await until(lambda: bool(written()))
        first = written()
        time.sleep(0.01)
        again = await blocking(
            lambda: [login(port, tls_pair, STAFF, PASSWORD, "127.0.0.1") for _ in range(3)]
        )
        assert again == [replies.AUTH_OK] * 3
        assert await blocking(lambda: login(port, tls_pair, STAFF, PASSWORD, "127.0.0.2")) == replies.AUTH_OK
        await until(lambda: len(written()) == 2)
        assert [r for r in written() if r[1] == "127.0.0.1"] == first
