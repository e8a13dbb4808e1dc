"""A relay password shorter than four characters, echoed by the relay in its reply to AUTH: the
masking left it as typed (a secret that short, masked wherever its letters stand, would garble
every text holding them), so the mail's kept error, the refusal held for every send, `smsgw
status` and the log line said it. In the reply to AUTH it is masked where it stands as a word of
its own; a word that merely holds its letters stays whole.

A real relay (aiosmtpd with AUTH PLAIN and LOGIN, its 535 echoing the password it was sent), the
real mailer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from structlog.testing import capture_logs

from gateway.mailer import SmtpRelayMailer
from tests.conftest import Sink, free_port
from tests.test_relay_login_gate import MAIL
from tests.test_relay_probe_mechanism import login_config

PASSWORD = "ab1"


def echoing(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
    said = data.password.decode() if isinstance(data, LoginPassword) else "?"
    return AuthResult(success=False, handled=False, message=f"535 5.7.8 password {said} refused (see tab1e)")


@asynccontextmanager
async def echoing_relay(port: int) -> AsyncIterator[None]:
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(
            Sink(),
            hostname="relay.test",
            authenticator=echoing,
            auth_require_tls=False,
            auth_exclude_mechanism=["CRAM-MD5"],
        ),
        "127.0.0.1",
        port,
    )
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


async def test_a_short_password_echoed_in_the_reply_to_auth_is_masked_as_a_word(tmp_path: Path) -> None:
    port = free_port()
    mailer = SmtpRelayMailer(login_config(tmp_path, port).mail, "gw.test", PASSWORD)
    try:
        with capture_logs() as logs:
            async with echoing_relay(port):
                with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
                    await mailer.send("gw@gw.test", "u@acme.example", MAIL)
                with pytest.raises(aiosmtplib.SMTPAuthenticationError) as held:
                    await mailer.send("gw@gw.test", "u@acme.example", MAIL)
        status = mailer.logins.report()
    finally:
        await mailer.close()
    said = "535 5.7.8 password *** refused (see tab1e)"
    assert repr(refused.value) == repr(held.value) == f"SMTPAuthenticationError(535, '{said[4:]}')"
    assert status is not None and status["reply"] == said
    warned = [e for e in logs if e["event"] == "mail.relay_login_refused"]
    assert [e["reply"] for e in warned] == [said]
