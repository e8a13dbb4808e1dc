"""R-1.4: a message becomes at most 10 SMS parts; the config cannot raise that."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, parse_config

BASE = """
[gateway]
domains = ["sms.example.com"]
max_parts = {}
[[smsc]]
name = "main"
type = "smpp"
port = 2775
"""


def test_max_parts_is_at_most_ten() -> None:
    assert parse_config(BASE.format(10), source="t").gateway.max_parts == 10
    with pytest.raises(ConfigError, match="max_parts"):
        parse_config(BASE.format(11), source="t")
