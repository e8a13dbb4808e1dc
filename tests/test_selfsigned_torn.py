"""A self-signed pair torn between its two renames is made again (`gateway.tlscert.make_selfsigned`).

`smsgw tls selfsigned --force` puts the new key in place, then the new certificate: killed between
the two (or the power lost), it left the new key beside the old certificate, and every start then
refused the pair (`tls_context`: key values mismatch) and exited 3, which systemd does not restart.
The crash is simulated at that point (no real peer can be killed between two renames on cue); the
files, openssl, the daemon and its submission port are real. A start and the command at once take
turns under a lock, and a work directory a run killed while openssl ran left behind (a private key
in it) is removed by the next.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import smtplib
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway import tlscert, tlsrenewal
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


def killed_run_left(state_dir: Path) -> Path:
    """What `tls selfsigned --force` killed -9 while openssl ran leaves: its work directory, the new
    key in it (its `finally` never ran)."""
    work = Path(tempfile.mkdtemp(prefix=tlscert.WORK_PREFIX, dir=state_dir))
    (work / tlscert.SELF_KEY).write_text("-----BEGIN PRIVATE KEY-----\n")
    return work


async def test_a_pair_torn_by_a_crash_in_force_is_made_again_and_the_start_serves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_config(tmp_path, smsc_port=free_port())
    cert, key, created = tlscert.make_selfsigned(cfg)
    assert created
    old_cert, old_key = cert.read_bytes(), key.read_bytes()
    torn_force(monkeypatch, cfg)
    assert key.read_bytes() != old_key and cert.read_bytes() == old_cert  # the new key, the old certificate
    left = killed_run_left(cfg.state_dir)
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
    assert not left.exists()
    assert not [p for p in os.listdir(cfg.state_dir) if p.startswith(tlscert.WORK_PREFIX)]


async def test_a_running_daemon_serves_on_and_its_warning_names_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tlsrenewal, "RELOAD_CHECK_SECONDS", 0.2, raising=False)  # a minute in production
    cfg = make_config(tmp_path, smsc_port=free_port())
    with capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            cert, key = tlscert.selfsigned_paths(cfg)
            torn_force(monkeypatch, cfg)
            await gw.until(lambda: any(e["event"] == "tls.certificate_not_renewed" for e in logs))
    refused = [e for e in logs if e["event"] == "tls.certificate_not_renewed"]
    assert refused[0]["fix"] == "`smsgw tls selfsigned --force` makes a new pair", refused
    assert tlscert.mismatched(cert, key)  # the next start makes it again (above)


def test_a_torn_pair_a_running_daemon_reloads_is_refused_naming_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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


def test_a_whole_pair_kept_still_removes_a_killed_runs_work_directory(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, smsc_port=free_port())
    cert, key, _ = tlscert.make_selfsigned(cfg)
    left = killed_run_left(cfg.state_dir)
    assert tlscert.make_selfsigned(cfg) == (cert, key, False)
    assert not left.exists()


def test_a_start_and_force_at_once_take_turns_and_leave_a_whole_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command is held between its two renames (a slow disk, the scheduler) while a start looks
    # at the pair: the start found it torn, made one, and the command's second rename tore it again.
    cfg = make_config(tmp_path, smsc_port=free_port())
    cert, key, _ = tlscert.make_selfsigned(cfg)
    real_replace, real_flock = os.replace, fcntl.flock
    between, start_waits_or_ran = threading.Event(), threading.Event()

    def replace(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        if threading.current_thread().name == "force" and Path(dst).name == tlscert.SELF_KEY:
            between.set()
            assert start_waits_or_ran.wait(30)

    def flock(fd: int, operation: int) -> None:
        if threading.current_thread().name == "start":
            start_waits_or_ran.set()  # at the lock: it waits there for the command
        real_flock(fd, operation)

    monkeypatch.setattr(tlscert.os, "replace", replace)
    monkeypatch.setattr(fcntl, "flock", flock)
    said: dict[str, object] = {}

    def start() -> None:
        said["start"] = tlscert.with_certificate(cfg)[1]  # the daemon's start, before it listens
        start_waits_or_ran.set()

    force = threading.Thread(
        target=tlscert.make_selfsigned, args=(cfg,), kwargs={"force": True}, name="force"
    )
    force.start()
    assert between.wait(30)
    starting = threading.Thread(target=start, name="start")
    starting.start()
    force.join(30)
    starting.join(30)
    assert said == {"start": None}  # submission on
    assert not tlscert.mismatched(cert, key)
    tlscert.tls_context(cert, key)  # what the start loads: it exited 3


def test_a_configured_pair_of_the_same_name_gets_no_selfsigned_hint(tmp_path: Path) -> None:
    # The hint named a command that writes state_dir's pair for any file called selfsigned-cert.pem.
    cfg = make_config(tmp_path, smsc_port=free_port())
    cert, _, _ = tlscert.make_selfsigned(cfg)
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (elsewhere / tlscert.SELF_CERT).write_bytes(cert.read_bytes())
    other = make_config(tmp_path / "other", smsc_port=free_port())
    _, other_key, _ = tlscert.make_selfsigned(other)
    (elsewhere / "server.key").write_bytes(other_key.read_bytes())
    with pytest.raises(ConfigError, match="key values mismatch") as refused:
        tlscert.tls_context(elsewhere / tlscert.SELF_CERT, elsewhere / "server.key")
    assert "selfsigned --force" not in str(refused.value)
