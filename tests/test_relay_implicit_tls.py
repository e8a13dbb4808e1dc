"""A relay on the SMTPS port (465, TLS from the connection on: RFC 8314 3.3), `[mail]
relay_implicit_tls = true`.

Such a relay says nothing until the TLS handshake: every send waited 30 s for a greeting that never
came, was deferred as "Timed out waiting for server ready message" and retried for five days, and
nothing could be configured for it. The relay here is a real aiosmtpd server behind a TLS listener
on loopback, its certificate self-signed for `localhost` and 127.0.0.1; the mail goes through the
running gateway's outbox.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from gateway.config import Config, ConfigError, parse_config
from gateway.configdoubts import setup_doubts
from gateway.relaylogin import clear_login_allowed
from tests.certs import make_cert_pair
from tests.conftest import Sink, config_text, free_port
from tests.test_mail_out_tls import RecordingRelay, send_one


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


class SmtpsRecording(RecordingRelay):
    """Notes whether each mail came over TLS by its connection's transport (aiosmtpd's `session.ssl`
    is set by STARTTLS alone)."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.options.append(list(envelope.mail_options))
        self.tls.append(server.transport.get_extra_info("ssl_object") is not None)
        return await Sink.handle_DATA(self, server, session, envelope)


@asynccontextmanager
async def smtps_relay(port: int, pair: tuple[Path, Path]) -> AsyncIterator[RecordingRelay]:
    """A relay that speaks TLS from the connection on, as Postfix with `smtpd_tls_wrappermode = yes`."""
    recording = SmtpsRecording()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*pair)
    listening = await asyncio.get_running_loop().create_server(
        lambda: SMTP(recording, hostname="relay.test"), "127.0.0.1", port, ssl=context
    )
    try:
        yield recording
    finally:
        listening.close()
        await listening.wait_closed()


def mail_config(tmp_path: Path, port: int, mail: str, relay: str = "127.0.0.1") -> Config:
    text = config_text(tmp_path, smsc_port=1, relay_port=port)
    anchor = f'relay = "127.0.0.1:{port}"\n'
    assert anchor in text
    text = text.replace(anchor, f'relay = "{relay}:{port}"\n{mail}', 1)
    return parse_config(text, source="test config", base_dir=tmp_path)


async def test_mail_goes_to_an_smtps_relay_verified_against_its_ca(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    shutil.copy(tls_pair[0], tmp_path / "company-ca.pem")
    port = free_port()
    cfg = mail_config(
        tmp_path, port, 'relay_implicit_tls = true\nrelay_tls_ca_file = "company-ca.pem"\n', "localhost"
    )
    async with smtps_relay(port, tls_pair) as relay:
        rows, _logs = await send_one(cfg)
    assert [(state, error) for state, _n, error in rows] == [("sent", None)]
    assert len(relay.messages) == 1 and relay.tls == [True]


async def test_an_smtps_relay_with_an_untrusted_certificate_defers_naming_the_settings(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    port = free_port()
    async with smtps_relay(port, tls_pair) as relay:
        rows, _logs = await send_one(mail_config(tmp_path, port, "relay_implicit_tls = true\n", "localhost"))
    ((state, attempts, error),) = rows
    assert (state, attempts, relay.messages) == ("queued", 1, [])
    assert error is not None and "the relay's certificate is not trusted" in error
    assert "relay_tls_ca_file" in error


async def test_a_relay_password_may_go_to_an_smtps_relay_off_loopback(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    # TLS from the first byte: nothing of the login is in clear, wherever the relay is, so the
    # guard that holds a password off a session in clear has nothing to hold.
    port = free_port()
    unverified = "relay_implicit_tls = true\nrelay_tls_verify = false\n"
    login = 'relay_username = "gw"\nrelay_password = "pw"\n'
    assert clear_login_allowed(mail_config(tmp_path, port, unverified + login, "mail.example.com").mail, "pw")
    async with smtps_relay(port, tls_pair) as relay:
        rows, _logs = await send_one(mail_config(tmp_path, port, unverified))
    assert rows[0][0] == "sent", rows
    assert relay.tls == [True]


async def test_a_greeting_that_never_comes_on_port_465_names_implicit_tls(
    tmp_path: Path, tls_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.mailer.COMMAND_TIMEOUT", 0.5)  # the greeting's wait, not 30 s
    try:
        relay = smtps_relay(465, tls_pair)
        await relay.__aenter__()
    except OSError as exc:  # not root, or a real SMTPS server on this machine
        pytest.skip(f"port 465 on loopback: {exc}")
    try:
        rows, logs = await send_one(mail_config(tmp_path, 465, ""))
    finally:
        await relay.__aexit__(None, None, None)
    ((state, _attempts, error),) = rows
    assert state == "queued"
    assert error is not None and error.startswith("SMTPConnectTimeoutError(")  # still a relay timeout
    assert "Timed out waiting for server ready message" in error
    assert "port 465 is SMTPS" in error and "relay_implicit_tls = true" in error
    (deferred,) = [e for e in logs if e["event"] == "mail.deferred"]
    assert deferred["relay_fault"] == "timeout"


def test_check_config_warns_of_a_relay_on_port_465_without_implicit_tls(tmp_path: Path) -> None:
    doubts = dict(setup_doubts(mail_config(tmp_path, 465, "")))
    assert "port 465 is SMTPS" in doubts["config.relay_tls_port"]
    assert "relay_implicit_tls = true" in doubts["config.relay_tls_port"]
    implicit = mail_config(tmp_path, 465, "relay_implicit_tls = true\n")
    assert "config.relay_tls_port" not in dict(setup_doubts(implicit))
    on_587 = dict(setup_doubts(mail_config(tmp_path, 587, "relay_implicit_tls = true\n")))
    assert "greets in plain text" in on_587["config.relay_tls_port"]


def test_implicit_tls_and_starttls_are_not_given_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="relay_starttls or relay_implicit_tls"):
        mail_config(tmp_path, 465, "relay_implicit_tls = true\nrelay_starttls = true\n")
    # The certificate's settings take effect with implicit TLS too.
    cfg = mail_config(tmp_path, 465, "relay_implicit_tls = true\nrelay_tls_verify = false\n")
    assert cfg.mail.relay_implicit_tls and not cfg.mail.relay_tls_verify
