"""A self-signed pair torn between its two renames is made again (`gateway.tlscert.make_selfsigned`).

`smsgw tls selfsigned --force` puts the new key in place, then the new certificate: killed between
the two (or the power lost), it left the new key beside the old certificate, and every start then
refused the pair (`tls_context`: key values mismatch) and exited 3, which systemd does not restart.
The crash is simulated at that point (no real peer can be killed between two renames on cue); the
files, openssl, the daemon and its submission port are real.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
from pathlib import Path

import pytest

from gateway import tlscert
from gateway.config import ConfigError
from tests.conftest import free_port, make_config, running_gateway


class Killed(BaseException):
    """The process's end between the renames: nothing after it runs."""


def torn_force(monkeypatch: pytest.MonkeyPatch, cfg: object) -> None:
    """`make_selfsigned(force=True)` ended after its first rename."""
    real = os.replace
    done: list[object] = []

    def replace_then_die(src: object, dst: object) -> None:
        if done:
            raise Killed
        real(src, dst)  # type: ignore[arg-type]
        done.append(dst)

    with monkeypatch.context() as patch:
        patch.setattr(tlscert.os, "replace", replace_then_die)
        with pytest.raises(Killed):
            tlscert.make_selfsigned(cfg, force=True)  # type: ignore[arg-type]


async def test_a_pair_torn_by_a_crash_in_force_is_made_again_and_the_start_serves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_config(tmp_path, smsc_port=free_port())
    cert, key, created = tlscert.make_selfsigned(cfg)
    assert created
    old_cert, old_key = cert.read_bytes(), key.read_bytes()
    torn_force(monkeypatch, cfg)
    assert key.read_bytes() != old_key and cert.read_bytes() == old_cert  # the new key, the old certificate
    async with running_gateway(cfg) as gw:
        port = gw.daemon.submission_port

        def starttls() -> int:
            context = ssl.create_default_context(cafile=str(cert))  # the pair in place now
            context.check_hostname = False
            with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
                client.starttls(context=context)
                return client.ehlo()[0]

        assert await asyncio.to_thread(starttls) == 250
    assert not tlscert.mismatched(cert, key) and cert.read_bytes() != old_cert
    assert not [p for p in os.listdir(cfg.state_dir) if p.startswith(".selfsigned")]


def test_a_torn_pair_a_running_daemon_reloads_is_refused_naming_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The daemon serves on with the pair it loaded (`gateway.tlsrenewal`) and warns with these words.
    cfg = make_config(tmp_path, smsc_port=free_port())
    cert, key, _ = tlscert.make_selfsigned(cfg)
    torn_force(monkeypatch, cfg)
    assert tlscert.mismatched(cert, key)
    with pytest.raises(ConfigError, match=r"key values mismatch.*`smsgw tls selfsigned --force` makes a new"):
        tlscert.tls_context(cert, key)


def test_a_whole_matching_pair_is_kept(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, smsc_port=free_port())
    cert, key, _ = tlscert.make_selfsigned(cfg)
    before = cert.read_bytes(), key.read_bytes()
    assert tlscert.make_selfsigned(cfg) == (cert, key, False)
    assert (cert.read_bytes(), key.read_bytes()) == before
