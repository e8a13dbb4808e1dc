"""The submission port's refusals tell an Outlook user what to do: Outlook shows only the reply's text.

Each keeps its code, its enhanced code and the lead words admins grep for, then says in one line
what the user can do. Real smtplib clients talk TLS to a running gateway on 127.0.0.1.
"""

from __future__ import annotations

import smtplib
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, running_gateway
from tests.test_auth_guessing import FakeClock
from tests.test_submission import (
    COLLEAGUE,
    PASSWORD,
    acme_user,
    blocking,
    plain,
    reply,
    secure,
    submission_config,
    with_password,
)

NEW_PASSWORD = "n3w-Pa55word-horse"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def auth(port: int, tls: tuple[Path, Path], blob: str, source: str = "127.0.0.1") -> str:
    with secure(port, tls, source) as c:
        return reply(c.docmd("AUTH", "PLAIN " + blob))


async def test_a_wrong_password_says_the_user_name_is_the_email_address(
    tmp_path: Path, tls_pair: Any
) -> None:
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        answer = await blocking(lambda: auth(port, tls_pair, plain(STAFF, "wrong-password")))
    assert answer.startswith("535 5.7.8 Authentication credentials invalid"), answer
    assert (
        "user name = your full email address" in answer
        and "ask the gateway's admin for the password" in answer
    )
    assert "wrong-password" not in answer


async def test_a_lockout_says_how_long_it_lasts_and_that_an_admin_can_lift_it(
    tmp_path: Path, tls_pair: Any
) -> None:
    # The 3rd typo locks the login at this address for 300 s; a minute later, the right password
    # hears that 4 minutes are left (not "try again later", which had the user retry into it).
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        clock = FakeClock()
        gw.daemon.gate.auth.clock = clock
        typos = await blocking(lambda: [auth(port, tls_pair, plain(STAFF, f"typo{i}")) for i in range(3)])
        clock.now += 61
        right = await blocking(lambda: auth(port, tls_pair, plain(STAFF, PASSWORD)))
    assert typos[:2] == [replies.AUTH_INVALID] * 2
    lock = "421 4.7.0 Too many failed authentications, locked for {} more minute(s);"
    assert typos[2].startswith(lock.format(5)), typos[2]
    assert right.startswith(lock.format(4)), right
    assert right.endswith("the gateway's admin can lift the lock (smsgw auth unlock)"), right


async def test_a_locked_address_hears_the_time_left_at_auth(tmp_path: Path, tls_pair: Any) -> None:
    # Told at AUTH, where the login is known (one that logged in from there lately passes), no
    # longer at the greeting.
    cfg = submission_config(tmp_path, 1, tls_pair, auth_max_failures_per_address=2)
    async with running_gateway(cfg) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        await blocking(lambda: [auth(port, tls_pair, plain(f"guess{i}@acme.example", "x")) for i in range(2)])
        answer = await blocking(lambda: auth(port, tls_pair, plain(STAFF, PASSWORD)))
    assert answer.startswith("421 4.7.0 Too many failed authentications, locked for 5 more minute(s);"), (
        answer
    )
    assert "(smsgw auth unlock)" in answer


async def test_a_changed_password_says_to_log_in_again_with_the_new_one(
    tmp_path: Path, tls_pair: Any
) -> None:
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        c: smtplib.SMTP = await blocking(lambda: secure(port, tls_pair))
        try:
            await blocking(lambda: c.login(STAFF, PASSWORD))
            await with_password(gw, password=NEW_PASSWORD)
            changed = await blocking(lambda: reply(c.docmd("MAIL", f"FROM:<{STAFF}>")))
            await blocking(lambda: c.login(STAFF, NEW_PASSWORD))
            await gw.store.write(lambda: gw.store.accounts.set_user(STAFF, password_hash=None))
            removed = await blocking(lambda: reply(c.docmd("MAIL", f"FROM:<{STAFF}>")))
        finally:
            await blocking(c.close)
    assert (
        changed
        == "530 5.7.0 Authentication required: your password was changed; log in again with the new one"
    )
    assert removed.startswith("530 5.7.0 Authentication required: your password was removed;"), removed


async def test_refused_senders_and_recipients_say_what_is_allowed(tmp_path: Path, tls_pair: Any) -> None:
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port

        def session() -> list[str]:
            with secure(port, tls_pair) as c:
                c.login(STAFF, PASSWORD)
                answers = [reply(c.docmd("MAIL", f"FROM:<{COLLEAGUE}>"))]
                answers.append(reply(c.docmd("MAIL", "FROM:<>")))
                answers.append(reply(c.docmd("MAIL", f"FROM:<{STAFF}>")))
                answers.append(reply(c.docmd("RCPT", "TO:<x@gmail.com>")))
                return answers

        not_owned, null, ok, gmail = await blocking(session)
    assert not_owned == null
    assert not_owned.startswith("550 5.7.1 Relay access denied: sender address not owned"), not_owned
    assert not_owned.endswith(f"; you may send only as <{STAFF}>"), not_owned
    assert ok == replies.OK_SENDER
    assert (
        gmail
        == f"550 5.7.1 <x@gmail.com>: Relay access denied; this server sends only SMS, to <number>@{DOMAIN}"
    )


async def test_the_relay_port_keeps_its_plain_relay_refusal(tmp_path: Path, tls_pair: Any) -> None:
    # Its client is an MTA, not a person: Postfix's own words only.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:

        def session() -> str:
            with smtplib.SMTP("127.0.0.1", gw.daemon.smtp_port, timeout=30) as c:
                c.ehlo("mta.test")
                c.docmd("MAIL", f"FROM:<{STAFF}>")
                return reply(c.docmd("RCPT", "TO:<x@gmail.com>"))

        answer = await blocking(session)
    assert answer == replies.RELAY_DENIED.format("x@gmail.com")


async def test_an_authzid_differing_only_in_case_is_the_login_itself(tmp_path: Path, tls_pair: Any) -> None:
    # Some clients send the authzid as the user typed it and the login as stored, or the reverse.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port

        def session(authzid: str, login: str) -> list[str]:
            with secure(port, tls_pair) as c:
                return [
                    reply(c.docmd("AUTH", "PLAIN " + plain(login, PASSWORD, authzid=authzid))),
                    reply(c.docmd("MAIL", f"FROM:<{STAFF}>")),
                ]

        upper = await blocking(lambda: session("Anna@ACME.example", STAFF))
        lower = await blocking(lambda: session(STAFF, " Anna@Acme.Example"))
    assert upper == lower == [replies.AUTH_OK, replies.OK_SENDER]


async def test_an_authzid_of_another_user_is_refused_and_logged_as_such(
    tmp_path: Path, tls_pair: Any
) -> None:
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        await acme_user(gw, COLLEAGUE)
        port = gw.daemon.submission_port
        with structlog.testing.capture_logs() as logs:
            answer = await blocking(lambda: auth(port, tls_pair, plain(STAFF, PASSWORD, authzid=COLLEAGUE)))
    assert answer == replies.AUTH_INVALID  # the same answer as a wrong password: nothing revealed
    failed = [e for e in logs if e["event"] == "submission.auth_failed"]
    assert [(e["login"], e["reason"]) for e in failed] == [(STAFF, "authzid names another identity")]
