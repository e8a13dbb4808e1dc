"""`[mail] relay_implicit_tls = true` against a relay that speaks plain SMTP (a STARTTLS or port 25
relay): the deferred mail says so and how to fix it. A real relay (aiosmtpd, no TLS) and the
running gateway's outbox.

OpenSSL's "[SSL: WRONG_VERSION_NUMBER] wrong version number" was all `smsgw outbox list` showed,
with the fault "unreachable", while the mail was retried for five days.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import free_port, smtp_sink
from tests.test_mail_out_tls import send_one
from tests.test_relay_implicit_tls import mail_config


async def test_implicit_tls_to_a_plain_text_relay_says_so(tmp_path: Path) -> None:
    port = free_port()
    cfg = mail_config(tmp_path, port, "relay_implicit_tls = true\nrelay_tls_verify = false\n")
    async with smtp_sink(port) as relay:
        rows, logs = await send_one(cfg)
    ((state, attempts, error),) = rows
    assert (state, attempts, relay.messages) == ("queued", 1, [])  # tried again later, not failed
    assert error is not None and error.startswith("SMTPConnectError(")  # still the relay's fault
    assert "WRONG_VERSION_NUMBER" in error  # OpenSSL's words stay beside ours
    assert f"the relay answered in plain text on port {port}" in error
    assert "leave [mail] relay_implicit_tls out, or use its SMTPS port (465)" in error
    (deferred,) = [e for e in logs if e["event"] == "mail.deferred"]
    assert deferred["relay_fault"] == "unreachable"
