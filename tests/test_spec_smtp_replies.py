"""R-2.1's refusals, as a mail client sees them over SMTP: every "who may send" refusal begins
with the spec's words (`530 5.7.0 Authentication required`, `550 5.7.1 Relay access denied`) and
keeps the gateway's explanation after them.

Real smtplib sessions against a running gateway on 127.0.0.1 (relay and submission ports).
"""

from __future__ import annotations

import smtplib
from pathlib import Path
from typing import Any

import pytest

from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, running_gateway
from tests.test_submission import PASSWORD, blocking, plain, secure, submission_config, with_password

RELAY_DENIED = "550 5.7.1 Relay access denied"
AUTH_REQUIRED = "530 5.7.0 Authentication required"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def said(answer: tuple[int, bytes]) -> str:
    return f"{answer[0]} {answer[1].decode()}"


def mail_from(port: int, sender: str, source: str = "127.0.0.1") -> str:
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as c:
        c.ehlo("mx.acme.example")
        return said(c.docmd("MAIL", f"FROM:<{sender}>"))


async def test_relay_refusals_start_with_the_spec_words(tmp_path: Path, tls_pair: Any) -> None:
    cfg = submission_config(tmp_path, 1, tls_pair)
    async with running_gateway(cfg) as gw:
        await gw.store.write(
            lambda: gw.store.accounts.set_account_networks(
                "acme", add=["127.0.0.1/32"], remove=["127.0.0.0/8"]
            )
        )
        stranger = await blocking(lambda: mail_from(gw.port, "eve@evil.example"))
        foreign_host = await blocking(lambda: mail_from(gw.port, STAFF, source="127.0.0.2"))
    assert stranger.startswith(RELAY_DENIED + ": sender not allowed"), stranger
    assert foreign_host.startswith(RELAY_DENIED + ": client host not allowed"), foreign_host
    assert "submission port" in foreign_host


async def test_submission_refusals_start_with_the_spec_words(tmp_path: Path, tls_pair: Any) -> None:
    cfg = submission_config(tmp_path, 1, tls_pair)
    async with running_gateway(cfg) as gw:
        await with_password(gw)
        port = gw.daemon.submission_port

        def anonymous() -> str:
            with secure(port, tls_pair) as c:
                return said(c.docmd("MAIL", f"FROM:<{STAFF}>"))

        def as_someone_else() -> str:
            with secure(port, tls_pair) as c:
                assert c.docmd("AUTH", "PLAIN " + plain(STAFF, PASSWORD))[0] == 235
                return said(c.docmd("MAIL", f"FROM:<boss@{DOMAIN}>"))

        no_login = await blocking(anonymous)
        not_owned = await blocking(as_someone_else)
    assert no_login.startswith(AUTH_REQUIRED), no_login
    assert not_owned.startswith(RELAY_DENIED + ": sender address not owned"), not_owned
