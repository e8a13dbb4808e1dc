"""`[[smsc]] host` written in a form that is no host: check-config passed "10.0.0.5:2775",
"cimd2://10.0.0.5" and " 10.0.0.5" (only "does not resolve", a warning), and the link never connected.
Now a port, a scheme or a space inside is refused with the fix; spaces around it are left off."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import parse_config
from tests.conftest import config_text
from tests.test_config_hosts import check_config


@pytest.mark.parametrize(
    ("host", "said"),
    [
        ("10.0.0.5:2775", 'holds a port: write the port in port = 2775, and host = "10.0.0.5"'),
        ("[2001:db8::5]:2775", 'holds a port: write the port in port = 2775, and host = "2001:db8::5"'),
        ("cimd2://10.0.0.5", "is a URL: write the host alone, with no scheme"),
        ("smpp://smsc.example.com:2775", 'e.g. host = "smsc.example.com"'),
        ("smsc example.com", "is not a host name or an IP address"),
        ("[::1]", "'[::1]': write the IPv6 address without brackets, host = \"::1\""),
        ("[fe80::1%eth0]", 'without brackets, host = "fe80::1%eth0"'),
        ("", "is empty"),
    ],
)
def test_check_config_refuses_a_host_that_is_no_host_and_says_the_fix(
    tmp_path: Path, host: str, said: str
) -> None:
    res = check_config(tmp_path, config_text(tmp_path, smsc_port=2775, smsc_extra=f'host = "{host}"'))
    assert res.returncode != 0, (res.stdout, res.stderr)
    assert said in res.stderr, res.stderr
    assert "does not resolve" not in res.stderr


@pytest.mark.parametrize("host", [" 10.0.0.5", "10.0.0.5\u00a0", "\t10.0.0.5 "])
def test_spaces_around_a_host_are_left_off(tmp_path: Path, host: str) -> None:
    text = config_text(tmp_path, smsc_port=2775, smsc_extra=f'host = "{host}"')
    assert [link.host for link in parse_config(text, source="t", base_dir=tmp_path).smsc] == ["10.0.0.5"]
    res = check_config(tmp_path, text)
    assert res.returncode == 0 and "does not resolve" not in res.stderr, res.stderr


@pytest.mark.parametrize("host", ["10.0.0.5", "::1", "2001:db8::5", "smsc.example.com", "localhost"])
def test_a_host_name_or_address_is_taken(tmp_path: Path, host: str) -> None:
    text = config_text(tmp_path, smsc_port=2775, smsc_extra=f'host = "{host}"')
    assert [link.host for link in parse_config(text, source="t", base_dir=tmp_path).smsc] == [host]


def test_validity_format_on_a_cimd2_link_is_refused_as_status_reports_on_smpp_is(tmp_path: Path) -> None:
    # Left from the SMPP block a CIMD2 one was made of, it was taken and did nothing.
    text = config_text(tmp_path, smsc_port=2775, smsc_extra='validity_format = "absolute"')
    res = check_config(tmp_path, text.replace('type = "smpp"', 'type = "cimd2"', 1))
    assert res.returncode != 0, res.stderr
    assert (
        'validity_format: only a type = "smpp" link takes it (CIMD2 always sends the time left' in res.stderr
    )
    assert check_config(tmp_path, text).returncode == 0  # an SMPP link's own
