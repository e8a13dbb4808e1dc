# ruff: noqa: F811  (the tests take the `tls_pair` and `web` fixtures, imported by name)
"""An office behind one NAT after a password change: colleagues whose mail clients retry a stale
password reach the address's failure cap together, and a user who logged in from that address
lately still gets in (SMTP AUTH and the panel), while a login new to the address is refused there
as before. Such an address is refused at AUTH, where the login is known, no longer at the greeting,
which refused everyone there, those who had just logged in included. Real smtplib clients over
STARTTLS to a running gateway's submission port; the panel through its ASGI app."""

from __future__ import annotations

import smtplib
from pathlib import Path
from typing import Any

from acl.lockout import Attempt, AuthGuard, Refused
from gateway.smtp import replies
from gateway.web.app import WebContext
from tests.conftest import STAFF, running_gateway
from tests.test_lockout import FakeClock
from tests.test_submission import (
    COLLEAGUE,
    PASSWORD,
    acme_user,
    auth_reply,
    blocking,
    connect,
    plain,
    secure,
    submission_config,
    tls_pair,  # noqa: F401  (the fixture)
    with_password,
)
from tests.test_web_routes import web  # noqa: F401  (the fixture)
from tests.web_helpers import ADMIN, OPERATOR, client, login

OFFICE = [f"staff{i}@acme.example" for i in range(1, 8)]  # seven colleagues with a stale password


def try_login(port: int, tls: tuple[Path, Path], login: str, password: str) -> str:
    """One AUTH in a session of its own, as a mail client's retry is; a refusal at connect answers too."""
    try:
        with secure(port, tls) as c:
            return auth_reply(c.docmd("AUTH", "PLAIN " + plain(login, password)))
    except smtplib.SMTPConnectError as refused:  # the greeting was no 220
        return auth_reply((refused.smtp_code, refused.smtp_error))


def greeting(port: int) -> int:
    try:
        with connect(port) as c:
            return c.noop()[0]
    except smtplib.SMTPConnectError as refused:
        return refused.smtp_code


async def test_stale_passwords_of_an_office_do_not_lock_out_who_logged_in_from_it(
    tmp_path: Path, tls_pair: Any
) -> None:
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        await acme_user(gw, COLLEAGUE)
        for colleague in OFFICE:
            await acme_user(gw, colleague)
        port = gw.daemon.submission_port

        def office() -> tuple[str, list[str], str, int, str]:
            first = try_login(port, tls_pair, STAFF, PASSWORD)  # Anna, this morning
            stale = [try_login(port, tls_pair, who, "the-old-password") for who in OFFICE for _ in range(3)]
            return (
                first,
                stale,
                try_login(port, tls_pair, STAFF, PASSWORD),  # Anna again, after the office's retries
                greeting(port),
                try_login(port, tls_pair, COLLEAGUE, PASSWORD),  # Ben, never logged in from here
            )

        first, stale, anna, greeted, ben = await blocking(office)
    assert first == replies.AUTH_OK
    # Each colleague's 3rd failure locks them alone there; the 20th failure at the address (the 7th's
    # 2nd) locks the address, and the 7th's retry is refused unchecked.
    ok, locked = replies.AUTH_INVALID, replies.AUTH_LOCKED
    assert stale == [ok, ok, locked] * 6 + [ok, locked, locked], stale
    assert anna == replies.AUTH_OK
    assert greeted == 250  # the address's lock is told at AUTH, where the login is known
    assert ben == replies.AUTH_LOCKED


def test_a_known_good_pair_is_held_by_its_own_cap_and_still_counts_for_the_address() -> None:
    guard = AuthGuard(3, 300, address_max_failures=5, clock=FakeClock())
    ip, anna = "192.0.2.1", "anna@acme.example"
    assert guard.settle(_attempt(guard, ip, anna), True) is None
    for who in ("x@acme.example", "y@acme.example", "z@acme.example", "w@acme.example"):
        guard.settle(_attempt(guard, ip, who), False)
    lockout = guard.settle(_attempt(guard, ip, anna), False)  # her typo is the address's 5th failure
    assert lockout is not None and lockout.address and not lockout.pair
    assert guard.begin(ip, "ben@acme.example") is Refused.ADDRESS
    # Anna passes the address's lock; her guesses stop at the pair's cap of 3, as a mistyper's.
    assert guard.settle(_attempt(guard, ip, anna), False) is None
    lockout = guard.settle(_attempt(guard, ip, anna), False)
    assert lockout is not None and lockout.pair
    assert guard.begin(ip, anna) is Refused.PAIR


def _attempt(guard: AuthGuard, ip: str, login: str) -> Attempt:
    attempt = guard.begin(ip, login)
    assert isinstance(attempt, Attempt), attempt
    return attempt


async def test_the_panel_lets_in_who_logged_in_from_an_office_locked_by_others(web: WebContext) -> None:
    async with client(web) as c:
        assert (await login(c, ADMIN)).status_code == 303  # the admin, earlier from this office
    async with client(web) as c:
        stale = [
            (await login(c, f"staff{i}@acme.example", "old")).status_code for i in range(7) for _ in range(3)
        ]
        assert stale[-1] == 429 and web.guard.address_locked_for("127.0.0.1") > 0, stale
    async with client(web) as c:
        admin = (await login(c, ADMIN)).status_code
    async with client(web) as c:
        operator = (await login(c, OPERATOR)).status_code  # never logged in from here
    assert admin == 303
    assert operator == 429
