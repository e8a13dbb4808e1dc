"""A submission session after its AUTH: what changes to the login since then do to it, and AUTH's
own corners. Real smtplib clients over TLS against the running gateway."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from acl.passwords import hash_password
from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import STAFF, running_gateway
from tests.test_submission import PASSWORD, blocking, plain, reply, secure, submission_config, with_password

NEW_PASSWORD = "n3w-horse-battery"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def mail_from(c: smtplib.SMTP) -> str:
    answer = reply(c.docmd("MAIL", f"FROM:<{STAFF}>"))
    c.docmd("RSET")
    return answer


async def test_a_new_password_stops_a_session_that_logged_in_with_the_old_one(
    tmp_path: Path, tls_pair: Any
) -> None:
    # A mail client keeps its session for hours: after an admin set a new password (the old one
    # leaked), whoever held the old one went on sending. Now its next MAIL asks for a login
    # again, which the new password gets and the old one does not.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port
        c: smtplib.SMTP = await blocking(lambda: secure(port, tls_pair))
        try:
            before = await blocking(lambda: (c.login(STAFF, PASSWORD), mail_from(c))[1])
            new_hash = hash_password(NEW_PASSWORD)
            await gw.store.write(lambda: gw.store.accounts.set_user(STAFF, password_hash=new_hash))
            after = await blocking(
                lambda: [
                    mail_from(c),
                    mail_from(c),
                    reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, PASSWORD))),
                    reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, NEW_PASSWORD))),
                    mail_from(c),
                ]
            )
        finally:
            await blocking(c.close)
    assert before == replies.OK_SENDER
    assert after == [
        replies.AUTH_PASSWORD_CHANGED,  # says why once; then aiosmtpd refuses an unauthenticated MAIL
        replies.AUTH_REQUIRED,
        replies.AUTH_INVALID,
        replies.AUTH_OK,
        replies.OK_SENDER,
    ]


async def mail_after(gw: Any, tls: tuple[Path, Path], change: Callable[[], Any]) -> str:
    """MAIL FROM in a session that logged in before `change` was written."""
    port = gw.daemon.submission_port
    c: smtplib.SMTP = await blocking(lambda: secure(port, tls))
    try:
        await blocking(lambda: c.login(STAFF, PASSWORD))
        await gw.store.write(change)
        return await blocking(lambda: mail_from(c))
    finally:
        await blocking(c.close)


async def test_a_cleared_password_suspension_or_removal_stops_a_logged_in_session(
    tmp_path: Path, tls_pair: Any
) -> None:
    # Each is read again at every MAIL of a session that logged in before it.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        accounts, policy = gw.store.accounts, gw.store.policy
        acme = accounts.get_account("acme").id
        await with_password(gw)
        cleared = await mail_after(gw, tls_pair, lambda: accounts.set_user(STAFF, password_hash=None))
        await with_password(gw)
        suspended = await mail_after(gw, tls_pair, lambda: policy.suspend_account(acme, "unpaid invoice"))
        await gw.store.write(lambda: policy.resume_account(acme))
        removed = await mail_after(gw, tls_pair, lambda: accounts.remove_user(STAFF))
    assert cleared == replies.AUTH_PASSWORD_REMOVED
    assert suspended == replies.SUSPENDED.format("acme", "unpaid invoice")
    assert removed == replies.SENDER_DENIED


async def test_an_empty_initial_response_is_a_wrong_login(tmp_path: Path, tls_pair: Any) -> None:
    # RFC 4954 4: `AUTH PLAIN =` sends an empty initial response; it got 501 "Can't decode base64".
    # Empty, like an empty answer to the challenge, it names no login: 535, and the session goes on.
    cfg = submission_config(tmp_path, 1, tls_pair, auth_max_failures=10)
    async with running_gateway(cfg) as gw:
        await with_password(gw)

        def session() -> list[str]:
            with secure(gw.daemon.submission_port, tls_pair) as c:
                return [
                    reply(c.docmd("AUTH", "PLAIN =")),
                    reply(c.docmd("AUTH", "PLAIN")),
                    reply(c.docmd("")),
                    reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, PASSWORD))),
                ]

        answers = await blocking(session)
    assert answers == [replies.AUTH_INVALID, "334 ", replies.AUTH_INVALID, replies.AUTH_OK]
