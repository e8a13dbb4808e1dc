"""The submission port as Outlook meets it: STARTTLS, AUTH PLAIN/LOGIN, lockout, sender ownership.

Real smtplib clients talk TLS to a running gateway on 127.0.0.1, and mail goes on to a fake SMSC.
AUTH itself (its commands, failures, the lockout, passwords kept from logs and the loop) has a module
of its own (test_submission_auth.py); the helpers it and other modules import stay here.
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
import ssl
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog

from acl.passwords import hash_password
from gateway.config import Config, ConfigError, parse_config
from gateway.smtp import replies, submission
from gateway.smtp.gate import Gate
from gateway.store.db import Store
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC

PASSWORD = "Tr0ub4dor&3-horse"
COLLEAGUE = "ben@acme.example"
RCPT = f"601123456@{DOMAIN}"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def submission_config_text(tmp_path: Path, smsc_port: int, tls: tuple[Path, Path] | None, **smtp: Any) -> str:
    """config_text plus TLS files and [smtp] keys, which config_text itself cannot express."""
    lines = [f'tls_cert_file = "{tls[0]}"', f'tls_key_file = "{tls[1]}"'] if tls else []
    lines += [f"{k} = {v!r}" for k, v in smtp.items()]
    anchor = 'submission_listen = "127.0.0.1:0"\n'
    text = config_text(tmp_path, smsc_port=smsc_port)
    assert anchor in text
    return text.replace(anchor, anchor + "".join(line + "\n" for line in lines), 1)


def submission_config(tmp_path: Path, smsc_port: int, tls: tuple[Path, Path] | None, **smtp: Any) -> Config:
    text = submission_config_text(tmp_path, smsc_port, tls, **smtp)
    return parse_config(text, source="test config", base_dir=tmp_path)


def client_tls(tls: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls[0]))


def connect(port: int, source: str = "127.0.0.1") -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30)


def secure(port: int, tls: tuple[Path, Path], source: str = "127.0.0.1") -> smtplib.SMTP:
    c = connect(port, source)
    c.ehlo("outlook.test")
    c.starttls(context=client_tls(tls))
    c.ehlo("outlook.test")
    return c


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def plain(login: str, password: str, authzid: str = "") -> str:
    return b64(f"{authzid}\0{login}\0{password}")


async def blocking(fn: Callable[[], Any]) -> Any:
    # The gateway runs on this loop, so blocking smtplib clients run in a thread.
    return await asyncio.wait_for(asyncio.to_thread(fn), 60)


async def with_password(gw: Any, email: str = STAFF, password: str = PASSWORD) -> None:
    await gw.store.write(lambda: gw.store.accounts.set_user(email, password_hash=hash_password(password)))


async def acme_user(gw: Any, email: str, password: str = PASSWORD) -> None:
    """`email` a user of acme's, logging in with `password`."""
    await gw.store.write(lambda: gw.store.accounts.add_user(email, "acme"))
    await with_password(gw, email, password)


def reply(code_text: tuple[int, bytes]) -> str:
    return f"{code_text[0]} {code_text[1].decode()}"


def auth_reply(code_text: tuple[int, bytes]) -> str:
    """`reply`, a lock's cut to its lead words: the minutes it says are left depend on when it is read."""
    text = reply(code_text)
    return replies.AUTH_LOCKED if text.startswith(replies.AUTH_LOCKED + ", locked for ") else text


async def test_ehlo_shows_starttls_before_tls_and_auth_only_after(tmp_path: Path, tls_pair: Any) -> None:
    # aiosmtpd #125: STARTTLS but no AUTH in the clear; after TLS, AUTH with exactly PLAIN and LOGIN.
    cfg = submission_config(tmp_path, 1, tls_pair)
    async with running_gateway(cfg) as gw:

        def session() -> tuple[bytes, bytes]:
            with connect(gw.daemon.submission_port) as c:
                c.ehlo("outlook.test")
                before = c.ehlo_resp or b""
                c.starttls(context=client_tls(tls_pair))
                c.ehlo("outlook.test")
                return before, c.ehlo_resp or b""

        before, after = await blocking(session)
    assert b"STARTTLS" in before and b"AUTH" not in before
    assert b"AUTH LOGIN PLAIN" in after.splitlines()  # aiosmtpd lists mechanisms sorted
    assert b"STARTTLS" not in after


async def test_commands_before_starttls_get_530(tmp_path: Path, tls_pair: Any) -> None:
    # RFC 3207: MAIL and AUTH in the clear are refused with the enhanced code, and no password is read.
    cfg = submission_config(tmp_path, 1, tls_pair)
    async with running_gateway(cfg) as gw:
        await with_password(gw)

        def session() -> list[str]:
            with connect(gw.daemon.submission_port) as c:
                c.ehlo("outlook.test")
                return [
                    reply(c.docmd("MAIL", f"FROM:<{STAFF}>")),
                    auth_reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, PASSWORD))),
                    reply(c.docmd("auth", "login")),
                ]

        answers = await blocking(session)
    assert answers == [replies.MUST_STARTTLS] * 3


async def test_mail_after_tls_but_before_auth_needs_auth(tmp_path: Path, tls_pair: Any) -> None:
    # Encryption alone is not identity: MAIL, RCPT and DATA need a login first.
    cfg = submission_config(tmp_path, 1, tls_pair)
    async with running_gateway(cfg) as gw:

        def session() -> list[str]:
            with secure(gw.daemon.submission_port, tls_pair) as c:
                return [reply(c.docmd("MAIL", f"FROM:<{STAFF}>")), reply(c.docmd("RCPT", f"TO:<{RCPT}>"))]

        answers = await blocking(session)
        assert gw.store.admin.count_messages() == 0
    assert answers == [replies.AUTH_REQUIRED] * 2


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_login_then_mail_reaches_the_smsc(tmp_path: Path, tls_pair: Any, mechanism: str) -> None:
    # Outlook's way: STARTTLS, AUTH, then an ordinary mail that becomes one SMS from the account.
    async with HappySMSC() as smsc, running_gateway(submission_config(tmp_path, smsc.port, tls_pair)) as gw:
        await with_password(gw)

        def session() -> tuple[int, bytes]:
            with secure(gw.daemon.submission_port, tls_pair) as c:
                c.user, c.password = STAFF, PASSWORD
                method = c.auth_plain if mechanism == "PLAIN" else c.auth_login
                answer = c.auth(mechanism, method, initial_response_ok=mechanism == "PLAIN")
                c.send_message(mail(RCPT, f"Sent after AUTH {mechanism}"), STAFF, [RCPT])
                return answer

        code, _text = await blocking(session)
        assert code == 235
        await smsc.wait_for(1)
        assert smsc.received[0].text == f"Sent after AUTH {mechanism}"
        row = gw.store.db.conn.execute("SELECT mail_from, user_id FROM emails").fetchone()
        assert row == (STAFF, gw.store.accounts.find_user(STAFF).id)


async def test_sender_must_be_the_logged_in_user(tmp_path: Path, tls_pair: Any) -> None:
    # mustMatchSender: even a colleague's address is refused; the user's own address in any case is fine.
    cfg = submission_config(tmp_path, 1, tls_pair)
    async with running_gateway(cfg) as gw:
        await with_password(gw)
        await gw.store.write(lambda: gw.store.accounts.add_user(COLLEAGUE, "acme"))

        def session() -> list[str]:
            with secure(gw.daemon.submission_port, tls_pair) as c:
                c.login(STAFF, PASSWORD)
                answers = [reply(c.docmd("MAIL", f"FROM:<{COLLEAGUE}>"))]
                answers.append(reply(c.docmd("MAIL", "FROM:<eve@evil.example>")))
                answers.append(reply(c.docmd("MAIL", f"FROM:<{STAFF.upper()}>")))
                return answers

        answers = await blocking(session)
    assert answers == [replies.NOT_OWNED.format(STAFF)] * 2 + [replies.OK_SENDER]


async def test_mail_from_takes_the_auth_parameter(tmp_path: Path, tls_pair: Any) -> None:
    # Defect: `MAIL FROM:<…> AUTH=<…>` (RFC 4954 5, sent by relaying servers) got 555, so such a
    # smart host's every mail was refused for good. The parameter is taken and ignored.
    async with HappySMSC() as smsc, running_gateway(submission_config(tmp_path, smsc.port, tls_pair)) as gw:
        await with_password(gw)

        def session() -> list[str]:
            with secure(gw.daemon.submission_port, tls_pair) as c:
                c.login(STAFF, PASSWORD)
                answers = [reply(c.docmd("MAIL", f"FROM:<{STAFF}> SIZE=300 BODY=8BITMIME AUTH=<{STAFF}>"))]
                answers.append(reply(c.docmd("RSET")))
                answers.append(reply(c.docmd("MAIL", f"FROM:<{STAFF}> AUTH=<>")))
                answers.append(reply(c.rcpt(RCPT)))
                c.data(mail(RCPT, "Via a smart host").as_bytes())
                return answers

        answers = await blocking(session)
        assert answers[0] == answers[2] == replies.OK_SENDER
        await smsc.wait_for(1)
        assert smsc.received[0].text == "Via a smart host"


async def test_suspended_account_is_refused_at_mail(tmp_path: Path, tls_pair: Any) -> None:
    # A valid login does not override a suspension: the relay port's SUSPENDED reply, naming the reason.
    cfg = submission_config(tmp_path, 1, tls_pair)
    async with running_gateway(cfg) as gw:
        await with_password(gw)
        await gw.store.write(
            lambda: gw.store.policy.suspend_account(
                gw.store.accounts.get_account("acme").id, "too many failures"
            )
        )

        def session() -> str:
            with secure(gw.daemon.submission_port, tls_pair) as c:
                c.login(STAFF, PASSWORD)
                return reply(c.docmd("MAIL", f"FROM:<{STAFF}>"))

        answer = await blocking(session)
    assert answer == replies.SUSPENDED.format("acme", "too many failures")


async def test_listener_raises_no_warning_about_auth_without_tls(tmp_path: Path, tls_pair: Any) -> None:
    # aiosmtpd warns when AUTH is required but TLS is not; the 587 listener must never be built that way.
    cfg = submission_config(tmp_path, 1, tls_pair)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with running_gateway(cfg) as gw:

            def session() -> int:
                with connect(gw.daemon.submission_port) as c:
                    return c.ehlo("outlook.test")[0]

            assert await blocking(session) == 250  # a server instance was built for this connection
    assert [str(w.message) for w in caught if "AUTH" in str(w.message)] == []


async def test_start_without_certificate_returns_none(tmp_path: Path) -> None:
    # No cert/key or no address: no listener, a warning in the log, and the daemon carries on.
    cfg = submission_config(tmp_path, 1, None)
    store = Store.open(cfg.db_path)
    try:
        with structlog.testing.capture_logs() as logs:
            assert await submission.start(Gate(cfg, store)) is None
        assert [e["event"] for e in logs] == ["submission.disabled"]
        no_addr = cfg.model_copy(update={"smtp": cfg.smtp.model_copy(update={"submission_listen": None})})
        assert await submission.start(Gate(no_addr, store)) is None
    finally:
        store.close()


async def test_unusable_certificate_is_a_config_error(tmp_path: Path, tls_pair: Any) -> None:
    # A missing or garbled file stops the start with the file named, instead of a port without TLS.
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [(tmp_path / "missing.pem", tls_pair[1], "missing.pem"), (garbage, tls_pair[1], "garbage.pem")]
    cases.append((tls_pair[0], garbage, "garbage.pem"))
    store = Store.open(tmp_path / "state" / "smsgw.db")
    try:
        for cert, key, named in cases:
            cfg = submission_config(tmp_path, 1, (cert, key))
            with pytest.raises(ConfigError, match=named):
                await submission.start(Gate(cfg, store))
    finally:
        store.close()
