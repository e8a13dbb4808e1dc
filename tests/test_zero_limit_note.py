"""A limit set to 0 says that every mail is refused from now on.

`account set NAME --monthly-limit 0` said only "account NAME updated": an admin who meant "no limit"
(that is `none`) found every mail of the company refused the next morning. `user set` alike. The CLI
runs in a subprocess on a real database."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import config_text, free_port
from tests.test_process import smsgw


def test_a_limit_of_zero_says_every_mail_is_refused_and_none_is_no_limit(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    (tmp_path / "state").mkdir()
    assert smsgw(config, "account", "add", "beta").returncode == 0
    assert smsgw(config, "user", "add", "--account", "beta", "ola@beta.example").returncode == 0
    out = smsgw(config, "account", "set", "beta", "--monthly-limit", "0")
    assert out.returncode == 0, out.stderr
    said = "note: a monthly limit of 0 refuses every mail of account beta from now on (`none` is no limit)"
    assert said in out.stdout, out.stdout
    out = smsgw(config, "user", "set", "ola@beta.example", "--daily-limit", "0")
    assert out.returncode == 0, out.stderr
    assert "note: a daily limit of 0 refuses every mail of user ola@beta.example from now on" in out.stdout
    out = smsgw(config, "account", "set", "beta", "--monthly-limit", "none", "--daily-limit", "5")
    assert out.returncode == 0 and "limit of 0" not in out.stdout, out.stdout
