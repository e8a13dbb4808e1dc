"""`[mail] relay_starttls = true` against a relay whose EHLO offers no STARTTLS: the relay's setup,
a relay fault like a refused certificate, in words that say what to change.

aiosmtplib raises a bare `SMTPException('SMTP STARTTLS extension not supported by server.')`, which
no fault list named: the log said `relay_fault: null`, mail deferred for it was not woken when the
relay was fixed, and status said nothing until the mail had waited half an hour. The relay here is
a real aiosmtpd server without TLS on loopback; the mail goes through the running gateway's outbox.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiosmtpd.smtp import SMTP

from gateway.relayfaultkinds import fault_kind
from tests.conftest import free_port
from tests.test_mail_out_tls import RecordingRelay, send_one
from tests.test_relay_starttls_offered import relay_config


async def test_starttls_required_and_not_offered_is_a_relay_fault_naming_the_setting(tmp_path: Path) -> None:
    port = free_port()
    recording = RecordingRelay()
    listening = await asyncio.get_running_loop().create_server(
        lambda: SMTP(recording, hostname="relay.test"), "127.0.0.1", port
    )
    try:
        rows, logs = await send_one(relay_config(tmp_path, port, "relay_starttls = true\n"))
    finally:
        listening.close()
        await listening.wait_closed()
    ((state, attempts, error),) = rows
    assert (state, attempts, recording.tls) == ("queued", 1, [])  # not sent in clear, tried again
    assert fault_kind(error) == "no STARTTLS offered", error
    assert error is not None and "does not offer STARTTLS" in error and "relay_starttls" in error
    (deferred,) = [e for e in logs if e["event"] == "mail.deferred"]
    assert deferred["relay_fault"] == "no STARTTLS offered", deferred
