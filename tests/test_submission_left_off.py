"""The submission port left off at the start (`gateway.submissionretry`): the self-signed pair's lock
held past the start's wait left the port refusing mail clients while `smsgw status` exited 0 and
/healthz said "ok", and nothing tried again once the holder ended. The holder is a real process
holding a real `flock`; the daemon, its SMSC over TCP, `smsgw status` as a process, /healthz over
HTTP and a mail client's STARTTLS on the port once it is bound are real, and so is a mail server's
EHLO on the relay port, whose STARTTLS needs the same certificate.
"""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import ssl
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from gateway import submissionretry, tlscert
from gateway.config import load_config
from gateway.filemodes import STATE_DIR_MODE, private_dir
from tests.conftest import config_text, free_port, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_process import smsgw
from tests.test_selfsigned_lock_wait import lock_held_by_a_stopped_process, returns
from tests.test_web_browser import WEB


def _starttls(port: int, cert: Path) -> int:
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.starttls(context=context)
        return client.ehlo()[0]


def _offers_starttls(port: int) -> bool:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo("mx.example")
        return client.has_extn("starttls")


def _config(tmp_path: Path, smsc_port: int, smtp: str = "") -> Path:
    config = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=smsc_port, extra=WEB)
    config.write_text(text.replace("[smtp]\n", f"[smtp]\n{smtp}"))
    config.chmod(0o640)
    return config


async def test_a_submission_port_left_off_is_said_and_bound_once_the_lock_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tlscert, "LOCK_WAIT_SECONDS", 0.3)  # the start's wait: 30 s in production
    monkeypatch.setattr(submissionretry, "RETRY_SECONDS", 0.05)  # a minute in production
    async with HappySMSC() as smsc:
        config = _config(tmp_path, smsc.port)
        cfg = load_config(config)
        private_dir(cfg.state_dir, STATE_DIR_MODE)
        with lock_held_by_a_stopped_process(cfg.state_dir) as pid, capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                await gw.until(lambda: gw.daemon.dispatcher.links["main"].state.value == "active")
                assert getattr(gw.daemon, "submission_port", None) is None
                # No certificate yet: the relay port offers no STARTTLS.
                assert not await asyncio.to_thread(_offers_starttls, gw.daemon.smtp_port)
                gw.daemon.housekeeping.report_status()
                off = await asyncio.to_thread(smsgw, config, "status")
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as web:
                    health = await web.get("/healthz")
                    # The holder ends: the next turn makes the pair and binds the port.
                    os.kill(pid, signal.SIGKILL)
                    await gw.until(lambda: getattr(gw.daemon, "submission_port", None) is not None)
                    cert = tlscert.selfsigned_paths(cfg)[0]
                    assert await asyncio.to_thread(_starttls, gw.daemon.submission_port, cert) == 250
                    # Mail servers are offered it too, without a restart: they sent in clear.
                    assert await asyncio.to_thread(_starttls, gw.daemon.smtp_port, cert) == 250
                    after = await web.get("/healthz")
                gw.daemon.housekeeping.report_status()
                on = await asyncio.to_thread(smsgw, config, "status")
    assert off.returncode == 1, off.stdout + off.stderr
    said = [line for line in off.stdout.splitlines() if line.startswith("submission off: ")]
    assert len(said) == 1 and f" by process {pid} (" in said[0], off.stdout
    assert health.status_code == 200 and health.text.startswith("ok\n"), health.text
    # /healthz is public: the one fixed line, no path, no process.
    assert health.text == f"ok\nwarning: {submissionretry.HEALTH_WARNING}\n", health.text
    assert (after.status_code, after.text) == (200, "ok\n")
    assert on.returncode == 0 and "submission off" not in on.stdout, on.stdout + on.stderr
    assert submissionretry.RELAY_STARTTLS_OFF not in on.stdout, on.stdout
    said_on = [e for e in logs if e["event"] == "submission.on"]
    assert [e["relay_starttls"] for e in said_on] == ["offered from now on"], said_on
    # Each turn of the retry waited for no lock: only the start's wait is logged.
    assert len([e for e in logs if e["event"] == "tls.selfsigned_lock_wait"]) == 1


async def test_intake_processes_say_the_relay_port_has_no_starttls_until_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Intake processes serve the relay port with the config they began with: the late pair is not
    theirs, and `smsgw status` says so, exiting 0 (mail still flows, in clear)."""
    monkeypatch.setattr(tlscert, "LOCK_WAIT_SECONDS", 0.3)
    monkeypatch.setattr(submissionretry, "RETRY_SECONDS", 0.05)
    async with HappySMSC() as smsc:
        config = _config(tmp_path, smsc.port, smtp="intake_processes = 1\n")
        cfg = load_config(config)
        private_dir(cfg.state_dir, STATE_DIR_MODE)
        with lock_held_by_a_stopped_process(cfg.state_dir) as pid, capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                await gw.until(lambda: gw.daemon.dispatcher.links["main"].state.value == "active")
                os.kill(pid, signal.SIGKILL)
                await gw.until(lambda: getattr(gw.daemon, "submission_port", None) is not None)
                offered = await asyncio.to_thread(_offers_starttls, gw.daemon.smtp_port)
                gw.daemon.housekeeping.report_status()
                on = await asyncio.to_thread(smsgw, config, "status")
    assert not offered
    assert on.returncode == 0, on.stdout + on.stderr
    assert submissionretry.RELAY_STARTTLS_OFF in on.stdout.splitlines(), on.stdout
    said_on = [e for e in logs if e["event"] == "submission.on"]
    assert [e["relay_starttls"] for e in said_on] == [submissionretry.RELAY_STARTTLS_OFF], said_on


async def test_the_retry_does_not_wait_for_the_lock(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, smsc_port=free_port())
    private_dir(cfg.state_dir, STATE_DIR_MODE)
    with lock_held_by_a_stopped_process(cfg.state_dir) as pid, capture_logs() as logs:
        got = returns(lambda: tlscert.with_certificate(cfg, lock_wait=0))
    assert "returned" in got, got
    _, why, made = got["returned"]  # type: ignore[misc]
    assert not made and why is not None and f"is held by process {pid} (" in why, why
    assert not [e for e in logs if e["event"] == "tls.selfsigned_lock_wait"]
