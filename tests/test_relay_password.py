"""`[mail] relay_password_file`: the relay's password kept out of config.toml, from systemd credentials.

A real relay (aiosmtpd on 127.0.0.1, AUTH required) checks the login the gateway's mailer makes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from gateway.config import ConfigError, parse_config
from gateway.mailer import build_mailer
from tests.conftest import config_text, free_port
from tests.test_process import smsgw

RELAY_SECRET = "relay-s3cret"


def relay_config_text(tmp_path: Path, relay_port: int, mail: str) -> str:
    text = config_text(tmp_path, smsc_port=free_port(), relay_port=relay_port)
    anchor = f'relay = "127.0.0.1:{relay_port}"\n'
    assert anchor in text
    return text.replace(anchor, anchor + mail, 1)


class Sink:
    def __init__(self) -> None:
        self.logins: list[tuple[bytes, bytes]] = []
        self.mail: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mail.append(envelope.content)
        return "250 2.0.0 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=(data.login, data.password) == (b"smsgw", RELAY_SECRET.encode()))


async def test_the_mailer_logs_in_with_the_password_from_the_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "relay-password").write_text(RELAY_SECRET + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    sink = Sink()
    port = free_port()
    relay = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        authenticator=sink.authenticate,
        auth_require_tls=False,
    )
    relay.start()
    try:
        text = relay_config_text(
            tmp_path, port, 'relay_username = "smsgw"\nrelay_password_file = "relay-password"\n'
        )
        cfg = parse_config(text, source="test config", base_dir=tmp_path)
        mailer = build_mailer(cfg)
        await asyncio.wait_for(
            mailer.send("smsgw@sms.example.com", "anna@acme.example", b"Subject: hi\r\n\r\nhi\r\n"), 30
        )
    finally:
        relay.stop()
    assert sink.logins == [(b"smsgw", RELAY_SECRET.encode())]
    assert len(sink.mail) == 1


def test_a_missing_password_file_stops_the_start_with_its_name(tmp_path: Path) -> None:
    text = relay_config_text(
        tmp_path, free_port(), 'relay_username = "smsgw"\nrelay_password_file = "nope"\n'
    )
    cfg = parse_config(text, source="test config", base_dir=tmp_path)
    with pytest.raises(ConfigError, match=f"\\[mail\\] relay_password_file: cannot read {tmp_path / 'nope'}"):
        build_mailer(cfg)


def test_password_and_password_file_together_are_refused(tmp_path: Path) -> None:
    text = relay_config_text(tmp_path, free_port(), 'relay_password = "x"\nrelay_password_file = "f"\n')
    with pytest.raises(ConfigError, match="relay_password or relay_password_file, not both"):
        parse_config(text, source="test config", base_dir=tmp_path)


def test_check_config_warns_about_a_relay_password_file_every_user_can_read(tmp_path: Path) -> None:
    secret = tmp_path / "relay-password"
    secret.write_text(RELAY_SECRET)
    secret.chmod(0o644)
    config = tmp_path / "config.toml"
    text = relay_config_text(
        tmp_path, free_port(), f'relay_username = "smsgw"\nrelay_password_file = "{secret}"\n'
    )
    config.write_text(text)
    config.chmod(0o600)
    res = smsgw(config, "check-config")
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stderr.splitlines() if "relay_password_file" in line]
    assert len(lines) == 1 and str(secret) in lines[0] and f"chmod 600 {secret}" in lines[0]
    assert RELAY_SECRET not in res.stderr
    secret.chmod(0o600)
    res = smsgw(config, "check-config")
    assert "relay_password_file" not in res.stderr
