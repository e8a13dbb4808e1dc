"""R-1.4: a message becomes at most 10 SMS parts. A config from before 0.2.4 may say more (up to
255 was taken): it still starts, so that an upgrade does not leave the service down, with 10 used
and a warning from check-config and run; a mail needing 11 parts is refused as for 10."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from gateway.configdoubts import setup_doubts
from tests.conftest import free_port
from tests.test_process import CLI, ROOT, write_config

BASE = """
[gateway]
domains = ["sms.example.com"]
max_parts = {}
[[smsc]]
name = "main"
type = "smpp"
port = 2775
"""


def test_a_max_parts_above_ten_is_used_as_ten_and_said() -> None:
    ten = parse_config(BASE.format(10), source="t")
    assert ten.gateway.parts_cap == 10 and not [e for e, _ in setup_doubts(ten) if "max_parts" in e]
    fifteen = parse_config(BASE.format(15), source="t")
    assert fifteen.gateway.parts_cap == 10
    [said] = [text for event, text in setup_doubts(fifteen) if event == "config.max_parts_above_spec"]
    assert "[gateway] max_parts: 15 is above" in said and "10 is used" in said
    with pytest.raises(ConfigError, match="max_parts"):
        parse_config(BASE.format(256), source="t")


def test_check_config_of_an_upgraded_config_warns_and_passes(tmp_path: Path) -> None:
    path = write_config(tmp_path, free_port(), free_port())
    path.write_text(path.read_text().replace("[gateway]\n", "[gateway]\nmax_parts = 15\n", 1))
    res = subprocess.run(
        [*CLI, "check-config", "--config", str(path)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert "[gateway] max_parts: 15 is above the 10 parts" in res.stdout + res.stderr
