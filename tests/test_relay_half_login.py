"""Half a relay login is refused by the config's check: a password without the user name, or the
name without a password. Either passed `check-config` ("config OK") and the mailer, which logs in
only with both, never made a login: the relay refused the mail as "authentication required", or an
open relay took it while the admin believed the gateway logged in."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import config_text, free_port
from tests.test_process import CLI, ROOT

EXIT_CONFIG = 3


def check_config(tmp_path: Path, mail_lines: str) -> subprocess.CompletedProcess[str]:
    text = config_text(tmp_path, smsc_port=free_port()).replace("[mail]\n", f"[mail]\n{mail_lines}", 1)
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o600)
    (tmp_path / "relay.pw").write_text("s3cret\n")
    (tmp_path / "relay.pw").chmod(0o600)
    command = [*CLI, "--config", str(config), "check-config"]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize(
    ("lines", "said"),
    [
        ('relay_password = "s3cret"\n', "[mail]: relay_password is set without relay_username"),
        ('relay_password_file = "relay.pw"\n', "[mail]: relay_password_file is set without relay_username"),
        (
            'relay_username = "gw"\n',
            "[mail]: relay_username is set without relay_password or relay_password_file",
        ),
    ],
)
def test_half_a_relay_login_is_refused_naming_the_half_missing(tmp_path: Path, lines: str, said: str) -> None:
    out = check_config(tmp_path, lines)
    assert out.returncode == EXIT_CONFIG, (out.stdout, out.stderr)
    assert said in out.stderr and "no login is made" in out.stderr, out.stderr
    assert "config OK" not in out.stdout + out.stderr and "s3cret" not in out.stderr


@pytest.mark.parametrize(
    "lines",
    [
        'relay_username = "gw"\nrelay_password = "s3cret"\n',
        'relay_username = "gw"\nrelay_password_file = "relay.pw"\n',
        "",
    ],
)
def test_a_whole_login_or_none_passes(tmp_path: Path, lines: str) -> None:
    out = check_config(tmp_path, lines)
    assert out.returncode == 0 and "config OK" in out.stdout + out.stderr, out.stderr
