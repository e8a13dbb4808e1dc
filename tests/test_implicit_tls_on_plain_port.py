"""A mail client set to implicit TLS (Outlook's "SSL/TLS") on the plain/STARTTLS port is logged.

The client opens with a TLS handshake, reads the gateway's banner as TLS, fails and hangs up: the
admin, told by the user that sending fails, found nothing in the log. Now one line says what
happened and what the client wants. A real TLS client (Python's ssl) against the real daemon."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.test_process import start_daemon, write_config


def tls_hello(port: int) -> None:
    """What Outlook does with "SSL/TLS" on port 587: a handshake at once, which fails."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, OSError)):
            with context.wrap_socket(raw, server_hostname="gw.example"):
                pass


async def test_a_tls_handshake_on_the_starttls_port_is_logged_once_with_what_the_client_wants(
    tmp_path: Path,
) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    proc = await start_daemon(config, smtp_port)
    try:
        await asyncio.to_thread(tls_hello, smtp_port)
        log = tmp_path / "daemon.log"
        for _ in range(200):
            lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
            said = [line for line in lines if line.get("event") == "smtp.implicit_tls_on_plain_port"]
            if said:
                break
            await asyncio.sleep(0.05)
        assert len(said) == 1, lines[-5:]
        assert said[0]["ip"] == "127.0.0.1" and said[0]["port"] == smtp_port, said
        assert said[0]["note"] == (
            "a TLS handshake on the plain/STARTTLS port: the client wants implicit TLS (port 465)"
        )
        assert said[0]["level"] == "warning"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
