"""Configs whose mail would loop back into the gateway: a relay that is the gateway itself or its own
submission port, a fallback address on the gateway's domains or host name, refused by `check-config`
and `run`, while relays and fallbacks that leave the gateway pass. Split from test_config_checks.py
by subject (it was over 400 lines); `relay` and `LISTEN` stay there, as other modules import them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.test_config_checks import (
    EXIT_CONFIG,
    LISTEN,
    SHIPPED,
    SUBMISSION,
    config_file,
    relay,
    smsgw,
    write,
)


@pytest.mark.parametrize(
    ("listen", "to", "key"),
    [
        ("127.0.0.1", "127.0.0.1", "[smtp] listen"),
        ("127.0.0.1", "localhost", "[smtp] listen"),
        ("0.0.0.0", "localhost", "[smtp] listen"),
        ("0.0.0.0", "127.0.0.1", "[smtp] listen"),
        ("[::]", "127.0.0.1", "[smtp] listen"),
        ("localhost", "[::1]", "[smtp] listen"),
        ("127.0.0.1", "0.0.0.0", "[smtp] listen"),
    ],
)
def test_check_config_refuses_a_relay_that_is_the_gateway_itself(
    tmp_path: Path, listen: str, to: str, key: str
) -> None:
    # Every bounce, notice and answer went into the gateway's own relay port instead of out.
    port = free_port()
    config = config_file(tmp_path, (LISTEN, f'listen = "{listen}:{port}"'), relay(f"{to}:{port}"))
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, res.stderr
    assert f'[mail] relay: "{to}:{port}" is the gateway\'s own {key} ("{listen}:{port}")' in res.stderr


def test_run_refuses_a_relay_at_its_own_submission_port(tmp_path: Path) -> None:
    port = free_port()
    config = config_file(
        tmp_path, (SUBMISSION, f'submission_listen = "127.0.0.1:{port}"'), relay(f"localhost:{port}")
    )
    res = smsgw("--config", str(config), "run")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, res.stderr
    assert "[mail] relay: " in res.stderr and "own [smtp] submission_listen" in res.stderr


@pytest.mark.parametrize(
    ("section", "address"),
    [
        ("replies", "ops@sms.example.com"),
        ("premium", "48601123456@SMS.Example.com"),
        ("replies", "x@sms2.example"),
    ],
)
def test_check_config_and_run_refuse_a_fallback_address_on_the_gateways_domains(
    tmp_path: Path, section: str, address: str
) -> None:
    # A forward to it came back through the relay port: a bounce again, or an SMS to the number.
    extra = f'\n[{section}]\nfallback_address = "{address}"\n'
    config = config_file(
        tmp_path,
        ('domains = ["sms.example.com"]', 'domains = ["sms.example.com", "sms2.example"]'),
        extra=extra,
    )
    for command in ("check-config", "run"):
        res = smsgw("--config", str(config), command)
        assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, (command, res.stderr)
        assert f'[{section}] fallback_address: "{address}" would loop' in res.stderr, res.stderr


def test_a_fallback_at_the_gateways_host_name_is_refused_when_it_takes_port_25(tmp_path: Path) -> None:
    extra = '\n[replies]\nfallback_address = "root@gw.example"\n'
    named = ('domains = ["sms.example.com"]', 'domains = ["sms.example.com"]\nhostname = "gw.example"')
    config = config_file(tmp_path, named, (LISTEN, 'listen = "0.0.0.0:25"'), extra=extra)
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == EXIT_CONFIG and "gw.example is [gateway] hostname" in res.stderr, res.stderr
    # On port 2525 the host's own mail server (port 25) takes that mail: no loop.
    config = config_file(tmp_path, named, (LISTEN, 'listen = "0.0.0.0:2525"'), extra=extra)
    assert smsgw("--config", str(config), "check-config").returncode == 0


def test_relays_and_fallbacks_that_leave_the_gateway_pass(tmp_path: Path) -> None:
    port = free_port()
    fine: list[Callable[[], Path]] = [
        lambda: config_file(tmp_path, (LISTEN, f'listen = "127.0.0.1:{port}"'), relay(f"127.0.0.2:{port}")),
        lambda: config_file(tmp_path, (LISTEN, f'listen = "127.0.0.1:{port}"'), relay(f"[::1]:{port}")),
        lambda: config_file(tmp_path, (LISTEN, 'listen = "0.0.0.0:25"'), relay("mail.example.com:25")),
        lambda: config_file(tmp_path, extra='\n[replies]\nfallback_address = "ops@example.com"\n'),
        lambda: write(tmp_path, SHIPPED),  # the shipped config: its relay is a maildir
    ]
    for written in fine:
        config = written()  # each over the last: one config.toml
        res = smsgw("--config", str(config), "check-config")
        assert res.returncode == 0, (config.read_text(), res.stderr)
