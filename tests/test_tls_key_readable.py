"""A submission (or panel) TLS key every user may read passed check-config without a word, while a config
holding a password, and an SMSC client key, were warned of: whoever reads it poses as this gateway to the
users' mail clients. Warned now alike, with the chmod that fixes it."""

from __future__ import annotations

from pathlib import Path

from tests.certs import make_cert_pair
from tests.conftest import config_text, free_port
from tests.test_process import smsgw
from tests.test_secrets import warnings_in


def test_a_submission_key_every_user_may_read_is_warned_of(tmp_path: Path) -> None:
    cert, key = make_cert_pair(tmp_path)
    text = config_text(tmp_path, smsc_port=free_port()).replace(
        'submission_listen = "127.0.0.1:0"\n',
        f'submission_listen = "127.0.0.1:0"\ntls_cert_file = "{cert}"\ntls_key_file = "{key}"\n',
        1,
    )
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o600)
    key.chmod(0o644)
    res = smsgw(config, "check-config")
    assert res.returncode == 0, res.stderr
    [line] = [w for w in warnings_in(res.stderr) if "readable by every user" in w]
    said = f"{key} holds a private key ([smtp] tls_key_file) and is readable by every user (mode 0644)"
    assert said in line and f"fix: chmod 600 {key}" in line, line
    key.chmod(0o600)
    res = smsgw(config, "check-config")
    assert res.returncode == 0 and "readable by every user" not in res.stderr, res.stderr
