"""Configs that `check-config` passed and the daemon then stopped on: files the daemon reads (ones it
cannot open or read, the panel's TLS files, bare names looked up in the credentials directory) and
the credentials drop-in handing over the relay password. `smsgw` runs as a real process on real
files in tmp_path, as in test_config_checks.py; split from it by subject (it was over 400 lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.servicefiles import CREDENTIALS_DROPIN, render_unit
from gateway.config import ConfigError
from gateway.store.db import Store
from gateway.web.server import WebServer
from tests.certs import make_cert_pair
from tests.test_config_checks import ROOT, config_file, smsgw
from tests.web_helpers import web_context

# ---- 2. files the daemon reads -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "old", "new"),
    [
        ("[smtp] tls_cert_file", "[smtp]\n",
         '[smtp]\ntls_cert_file = "{missing}"\ntls_key_file = "{there}"\n'),
        ("[smtp] tls_key_file", "[smtp]\n",
         '[smtp]\ntls_cert_file = "{there}"\ntls_key_file = "{missing}"\n'),
        ('[[smsc]] "main" password_file', 'password = "secret"\n', 'password_file = "{missing}"\n'),
        ("[mail] relay_password_file", "[mail]\n",
         '[mail]\nrelay_username = "a"\nrelay_password_file = "{missing}"\n'),
        ("[mail] relay_tls_ca_file", "[mail]\n",
         '[mail]\nrelay_starttls = true\nrelay_tls_ca_file = "{missing}"\n'),
    ],
)  # fmt: skip
def test_check_config_refuses_a_file_the_daemon_cannot_open_naming_it(
    tmp_path: Path, key: str, old: str, new: str
) -> None:
    there = tmp_path / "there.pem"
    there.write_text("x")
    missing = tmp_path / "private" / "missing"  # with a directory: never a systemd credential
    config = config_file(tmp_path, (old, new.format(missing=missing, there=there)))
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode != 0 and "config OK" not in res.stdout
    assert "Traceback" not in res.stderr
    assert f"{key}: cannot read {missing}: No such file or directory" in res.stderr


def test_check_config_refuses_a_password_file_it_cannot_read(tmp_path: Path) -> None:
    # A directory where the password file should be: it exists, yet nothing can be read from it.
    secret = tmp_path / "smsc-password"
    secret.mkdir()
    config = config_file(tmp_path, ('password = "secret"', f'password_file = "{secret}"'))
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f'[[smsc]] "main" password_file: cannot read {secret}: Is a directory' in res.stderr


def test_web_tls_files_are_checked_when_the_panel_runs(tmp_path: Path) -> None:
    web = (
        '\n[web]\nenabled = {on}\nlisten = "127.0.0.1:0"\n'
        f'tls_cert_file = "{tmp_path / "web.crt"}"\ntls_key_file = "web.key"\n'
    )
    res = smsgw("--config", str(config_file(tmp_path, extra=web.format(on="true"))), "check-config")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f"[web] tls_cert_file: cannot read {tmp_path / 'web.crt'}" in res.stderr
    assert f"[web] tls_key_file: cannot read {tmp_path / 'web.key'}" in res.stderr  # beside the config
    # With the panel off the daemon never reads them.
    res = smsgw("--config", str(config_file(tmp_path, extra=web.format(on="false"))), "check-config")
    assert res.returncode == 0, res.stderr


def test_bare_names_are_looked_up_in_the_credentials_directory_as_the_daemon_does(tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    config = config_file(tmp_path, ('password = "secret"', 'password_file = "smsc-password"'))
    under_systemd = {"CREDENTIALS_DIRECTORY": str(creds)}
    # Neither in $CREDENTIALS_DIRECTORY nor beside the config: `run` would stop on it.
    res = smsgw("--config", str(config), "check-config", env=under_systemd)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f'password_file: no file "smsc-password" in $CREDENTIALS_DIRECTORY ({creds})' in res.stderr
    assert "LoadCredential=smsc-password:" in res.stderr
    (creds / "smsc-password").write_text("secret\n")
    (creds / "smsc-password").chmod(0o600)
    res = smsgw("--config", str(config), "check-config", env=under_systemd)
    assert res.returncode == 0, res.stderr
    # By hand, without systemd's directory, a credential cannot be seen: check-config says what the
    # unit must hand over instead of refusing a config that is right under systemd.
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == 0, res.stderr
    [line] = [line for line in res.stderr.splitlines() if "smsc-password" in line]
    assert line.startswith("smsgw: warning: ") and str(tmp_path / "smsc-password") in line
    assert "LoadCredential=smsc-password:/etc/smsgw/private/smsc-password" in line


async def test_the_panel_names_the_tls_file_it_cannot_load(tmp_path: Path) -> None:
    # It said "cannot listen on web.listen ...: No such file or directory", naming no file.
    cert, key = make_cert_pair(tmp_path / "tls")
    missing, garbage = tmp_path / "missing-key.pem", tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    store = Store.open(tmp_path / "panel.db")
    try:
        tls = f'listen = "127.0.0.1:0"\ntls_cert_file = "{cert}"\ntls_key_file = "{missing}"\n'
        with pytest.raises(
            ConfigError, match=rf"\[web\] tls_key_file: cannot read the TLS key file {missing}: No such file"
        ):
            await WebServer(web_context(tmp_path, store, tls)).start()
        tls = f'listen = "127.0.0.1:0"\ntls_cert_file = "{garbage}"\ntls_key_file = "{key}"\n'
        with pytest.raises(
            ConfigError,
            match=rf"\[web\] tls_cert_file, tls_key_file: cannot load the TLS certificate {garbage} with",
        ):
            await WebServer(web_context(tmp_path, store, tls)).start()
    finally:
        store.close()


# ---- 3. the credentials drop-in ------------------------------------------------------------------


def test_the_credentials_dropin_hands_over_the_relay_password() -> None:
    # README's systemd section names relay_password_file as a credential; the drop-in had no line.
    assert "LoadCredential=relay-password:/etc/smsgw/private/relay-password\n" in CREDENTIALS_DROPIN
    assert 'relay_password_file = "relay-password"' in CREDENTIALS_DROPIN
    assert (ROOT / "systemd/smsgw-credentials.conf").read_text() == CREDENTIALS_DROPIN
    assert "(password_file, relay_password_file, tls_cert_file, tls_key_file)" in render_unit()
    assert 'relay_password_file = "relay-password"' in (ROOT / "README.md").read_text()
