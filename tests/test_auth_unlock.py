"""`smsgw auth list` and `smsgw auth unlock` against a running daemon: the CLI is another process.

The locks live in the daemon's memory; the CLI leaves an unlock request in the database and the
daemon honours it at the next attempt, with no restart. Real smtplib clients, the CLI in a
subprocess.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_config
from gateway.housekeeping import read_status
from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import STAFF, running_gateway
from tests.test_process import smsgw
from tests.test_submission import (
    COLLEAGUE,
    PASSWORD,
    acme_user,
    auth_reply,
    blocking,
    plain,
    secure,
    submission_config_text,
    with_password,
)


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def auth(port: int, tls: tuple[Path, Path], login: str, password: str, source: str = "127.0.0.1") -> str:
    with secure(port, tls, source) as c:
        return auth_reply(c.docmd("AUTH", "PLAIN " + plain(login, password)))


async def until(predicate: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


async def test_unlock_from_the_cli_lifts_a_lock_in_the_running_daemon(tmp_path: Path, tls_pair: Any) -> None:
    config = tmp_path / "config.toml"
    config.write_text(submission_config_text(tmp_path, 1, tls_pair, auth_max_failures_per_address=5))
    cfg = load_config(config)
    async with running_gateway(cfg) as gw:
        await with_password(gw)
        await acme_user(gw, COLLEAGUE)
        port = gw.daemon.submission_port

        # Anna mistypes three times: locked at her address, the right password gets 421 too.
        def mistype() -> list[str]:
            return [auth(port, tls_pair, STAFF, f"typo{i}") for i in range(3)] + [
                auth(port, tls_pair, STAFF, PASSWORD)
            ]

        assert await blocking(mistype) == [replies.AUTH_INVALID] * 2 + [replies.AUTH_LOCKED] * 2

        # `auth list` shows it once the daemon has written its status.
        def locked_in_status() -> bool:
            status = read_status(cfg.state_dir)
            return bool(status and status.get("auth_locks"))

        await until(locked_in_status)
        listed = await blocking(lambda: smsgw(config, "auth", "list"))
        assert listed.returncode == 0, listed.stderr
        assert f"address 127.0.0.1 login {STAFF}" in listed.stdout
        assert "this login from this address" in listed.stdout
        status = await blocking(lambda: smsgw(config, "status"))
        assert "logins    1 locked after failed attempts" in status.stdout, status.stdout

        done = await blocking(lambda: smsgw(config, "auth", "unlock", STAFF.upper()))
        assert done.returncode == 0, done.stderr
        assert f"unlocked {STAFF}" in done.stdout
        # Still in the status file until the next attempt, which the daemon lifts it at: said so.
        listed = await blocking(lambda: smsgw(config, "auth", "list"))
        assert "(unlock requested: lifted at the next login attempt)" in listed.stdout, listed.stdout
        assert await blocking(lambda: auth(port, tls_pair, STAFF, PASSWORD)) == replies.AUTH_OK

        # A whole address locked (refused at AUTH to a login not known good there), lifted by its IP
        # address.
        def flood() -> list[str]:
            logins = [COLLEAGUE, COLLEAGUE, "x1@acme.example", "x1@acme.example", "x2@acme.example"]
            return [
                auth(port, tls_pair, who, f"guess{i}", source="127.0.0.2") for i, who in enumerate(logins)
            ]

        answers = await blocking(flood)
        assert answers == [replies.AUTH_INVALID] * 4 + [replies.AUTH_LOCKED]
        refused = await blocking(lambda: auth(port, tls_pair, COLLEAGUE, PASSWORD, "127.0.0.2"))
        assert refused == replies.AUTH_LOCKED
        done = await blocking(lambda: smsgw(config, "auth", "unlock", "127.0.0.2"))
        assert done.returncode == 0, done.stderr
        ben = await blocking(lambda: auth(port, tls_pair, COLLEAGUE, PASSWORD, "127.0.0.2"))
        assert ben == replies.AUTH_OK


def test_unlock_refuses_what_is_neither_an_address_nor_a_login(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(submission_config_text(tmp_path, 1, None))
    res = smsgw(config, "auth", "unlock", "192.0.2")
    assert res.returncode == 2
    assert "neither an IP address nor a login" in res.stderr


def test_auth_list_without_a_daemon_says_so(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(submission_config_text(tmp_path, 1, None))
    res = smsgw(config, "auth", "list")
    assert res.returncode == 0, res.stderr
    assert "not running" in res.stdout


def test_auth_unlock_without_a_daemon_says_there_is_nothing_to_lift(tmp_path: Path) -> None:
    # It answered "the running daemon lifts the lock at the next login attempt" with no daemon.
    config = tmp_path / "config.toml"
    config.write_text(submission_config_text(tmp_path, 1, None))
    res = smsgw(config, "auth", "unlock", "192.0.2.7")
    assert res.returncode == 0, res.stderr
    assert "not running: no locks to lift" in res.stdout and "running daemon lifts" not in res.stdout
