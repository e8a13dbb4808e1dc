"""A start and the self-signed pair's lock held by a process that does not go on
(`gateway.tlscert.make_selfsigned`): a `smsgw tls selfsigned --force` stopped with Ctrl-Z, or an
openssl that hung, held `.tls-selfsigned.lock`, and every start waited for it for good, saying
nothing, a whole pair in place or not. The holder is a real process holding a real `flock`, stopped
with SIGSTOP as Ctrl-Z stops it; the files and the daemon are real.
"""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway import tlscert
from tests.conftest import free_port, make_config, running_gateway

HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


@contextmanager
def lock_held_by_a_stopped_process(state_dir: Path) -> Iterator[int]:
    """The pair's lock held by another process, stopped (Ctrl-Z) while it holds it; its pid."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(state_dir / tlscert.SELF_LOCK)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            os.kill(holder.pid, signal.SIGSTOP)
            yield holder.pid
        finally:
            holder.kill()
            holder.wait()


def returns(call: object, *args: object) -> dict[str, object]:
    """`call(*args)` in a thread: what it returned or raised, or nothing when it still waits (a hang
    guard far past any wait of its own; the lock's holder is ended after it, and the thread with it)."""
    got: dict[str, object] = {}

    def run() -> None:
        try:
            got["returned"] = call(*args)  # type: ignore[operator]
        except Exception as exc:
            got["raised"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    return got


async def test_a_whole_pair_starts_at_once_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, smsc_port=free_port())
    cert, key, created = tlscert.make_selfsigned(cfg)
    assert created
    with lock_held_by_a_stopped_process(cfg.state_dir), capture_logs() as logs:
        assert returns(tlscert.make_selfsigned, cfg) == {"returned": (cert, key, False)}
        async with running_gateway(cfg) as gw:
            port = gw.daemon.submission_port

            def starttls() -> int:
                context = ssl.create_default_context(cafile=str(cert))
                context.check_hostname = False
                with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
                    client.starttls(context=context)
                    return client.ehlo()[0]

            assert await asyncio.to_thread(starttls) == 250
    assert not [e for e in logs if e["event"] == "tls.selfsigned_lock_wait"]  # nothing waited for


async def test_a_torn_pair_with_the_lock_held_waits_a_bounded_time_and_names_the_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tlscert, "LOCK_WAIT_SECONDS", 0.5, raising=False)  # 30 s in production
    cfg = make_config(tmp_path, smsc_port=free_port())
    cert = tlscert.make_selfsigned(cfg)[0]
    cert.write_text("")  # openssl's output lost (a full disk): the pair must be made again
    lock = cfg.state_dir / tlscert.SELF_LOCK
    with lock_held_by_a_stopped_process(cfg.state_dir) as pid, capture_logs() as logs:
        got = returns(tlscert.make_selfsigned, cfg)
        assert isinstance(got.get("raised"), tlscert.CertError), got
        said = str(got["raised"])
        assert f"{lock} has been held for over 0.5 s by process {pid} (" in said, said
        assert ", stopped, which makes the pair" in said and "set [smtp] tls_cert_file" in said, said
        waits = [e for e in logs if e["event"] == "tls.selfsigned_lock_wait"]
        assert len(waits) == 1 and waits[0]["lock"] == str(lock), waits
        assert waits[0]["holder"].startswith(f"process {pid} ("), waits
        # The daemon's start goes on, the submission port off and why said, the relay port taking mail.
        async with running_gateway(cfg) as gw:
            assert getattr(gw.daemon, "submission_port", None) is None
            assert gw.daemon.smtp_port
        ready = [e for e in logs if e["event"] == "daemon.ready"]
        assert ready and ready[0]["submission"].startswith("off (cannot make the self-signed"), ready
        assert f"by process {pid} (" in ready[0]["submission"], ready
        assert cert.read_text() == ""  # nothing made meanwhile: the holder may still be making it
