"""Mail to the relay goes over STARTTLS whenever the relay offers it (`[mail] relay_starttls =
"when-offered"`, the default; Postfix `smtp_tls_security_level = may`).

With `false` as the default, the bounces quoting SMS texts and the phones' answers crossed the LAN in
clear to a relay that offered TLS. Offered, STARTTLS is used without checking the certificate (a
company relay's is self-signed or internal: encryption against eavesdropping, RFC 7435); a failed
handshake sends the mail in clear, as Postfix does, and says so. `true` still requires TLS and checks
the certificate (`tests/test_mail_out_tls.py`); `false` keeps the relay plain. The relay here is a
real aiosmtpd server with a TLS context on loopback; the mail goes through the running gateway's
outbox.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from gateway.config import Config, ConfigError, parse_config
from tests.certs import make_cert_pair
from tests.conftest import config_text, free_port
from tests.test_mail_out_tls import RecordingRelay, send_one


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


class BrokenTLS(SMTP):
    """Offers STARTTLS, says 220 to it, then answers the handshake with bytes that are not TLS (a
    relay whose TLS setup broke; a middlebox that strips TLS)."""

    async def smtp_STARTTLS(self, arg: str) -> None:
        await self.push("220 2.0.0 Ready to start TLS")
        assert self.transport is not None
        self.transport.write(b"this is not a TLS record\r\n" * 8)


@asynccontextmanager
async def relay(
    port: int, pair: tuple[Path, Path], server: type[SMTP] = SMTP
) -> AsyncIterator[RecordingRelay]:
    """A relay that offers STARTTLS (self-signed, not trusted here) and takes plain mail too."""
    recording = RecordingRelay()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*pair)
    listening = await asyncio.get_running_loop().create_server(
        lambda: server(recording, hostname="relay.test", tls_context=context), "127.0.0.1", port
    )
    try:
        yield recording
    finally:
        listening.close()
        await listening.wait_closed()


def relay_config(tmp_path: Path, port: int, mail: str = "") -> Config:
    text = config_text(tmp_path, smsc_port=1, relay_port=port)
    anchor = f'relay = "127.0.0.1:{port}"\n'
    assert anchor in text
    return parse_config(text.replace(anchor, anchor + mail, 1), source="test config", base_dir=tmp_path)


async def test_by_default_mail_goes_over_starttls_when_the_relay_offers_it(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    port = free_port()
    cfg = relay_config(tmp_path, port)
    assert cfg.mail.relay_starttls == "when-offered"
    async with relay(port, tls_pair) as seen:
        rows, logs = await send_one(cfg)
    assert rows[0][0] == "sent", rows
    assert seen.tls == [True]  # over TLS, although the relay's certificate is self-signed
    assert not [e for e in logs if e["event"] == "mail.relay_tls_failed"]


async def test_said_explicitly_when_offered_is_the_same(tmp_path: Path, tls_pair: tuple[Path, Path]) -> None:
    port = free_port()
    async with relay(port, tls_pair) as seen:
        rows, _ = await send_one(relay_config(tmp_path, port, 'relay_starttls = "when-offered"\n'))
    assert rows[0][0] == "sent", rows
    assert seen.tls == [True]


async def test_false_keeps_the_relay_plain(tmp_path: Path, tls_pair: tuple[Path, Path]) -> None:
    port = free_port()
    async with relay(port, tls_pair) as seen:
        rows, _ = await send_one(relay_config(tmp_path, port, "relay_starttls = false\n"))
    assert rows[0][0] == "sent", rows
    assert seen.tls == [False]


async def test_a_failed_handshake_sends_the_mail_in_clear_and_says_so(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    port = free_port()
    async with relay(port, tls_pair, BrokenTLS) as seen:
        rows, logs = await send_one(relay_config(tmp_path, port))
    assert rows[0][0] == "sent", rows  # not deferred for five days
    assert seen.tls == [False]
    (failed,) = [e for e in logs if e["event"] == "mail.relay_tls_failed"]
    assert failed["log_level"] == "warning"
    assert failed["sending"] == "in plain text" and failed["relay"] == f"127.0.0.1:{port}"


async def test_a_relay_without_starttls_gets_the_mail_plain_and_no_warning(tmp_path: Path) -> None:
    port = free_port()
    recording = RecordingRelay()
    listening = await asyncio.get_running_loop().create_server(
        lambda: SMTP(recording, hostname="relay.test"), "127.0.0.1", port
    )
    try:
        rows, logs = await send_one(relay_config(tmp_path, port))
    finally:
        listening.close()
        await listening.wait_closed()
    assert rows[0][0] == "sent", rows
    assert recording.tls == [False]
    assert not [e for e in logs if e["event"] == "mail.relay_tls_failed"]


@pytest.mark.parametrize(
    "mail",
    ['relay_starttls = "when-offered"\nrelay_tls_verify = false\n', 'relay_tls_ca_file = "ca.pem"\n'],
)
def test_certificate_settings_need_starttls_required(tmp_path: Path, mail: str) -> None:
    # They check the certificate, which "when-offered" never does: set alone, they would mislead.
    with pytest.raises(ConfigError, match="only with relay_starttls = true"):
        relay_config(tmp_path, free_port(), mail)


def test_a_quoted_yes_is_refused_naming_the_three_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        relay_config(tmp_path, free_port(), 'relay_starttls = "yes"\n')
    said: Any = str(caught.value)
    assert '[mail] relay_starttls: give true, false or "when-offered"' in said, said
