"""A HUP in the first moments of `smsgw run` does not end it.

SIGHUP was ignored only once the config had been read and checked: a HUP in the first seconds
(logrotate, a HUP storm after `systemctl restart`) ended the process with status 129 and no line,
which systemd's Restart=on-failure takes for a clean stop, leaving the gateway down. The config here
is a FIFO, so the HUP arrives while `run` is certainly still reading it; the real process, signals
and SMTP port.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import config_text, free_port
from tests.test_process import CLI, ROOT, signalled_at, until_listening


def _writer_when_read(fifo: Path, proc: subprocess.Popen[bytes]) -> int:
    """The FIFO's write end once `run` has opened it for reading (it then waits in its read)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "run ended before it read its config"
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # no reader yet
                raise
        time.sleep(0.01)
    raise AssertionError("run never opened its config")


async def test_a_hup_while_run_reads_its_config_does_not_end_it(tmp_path: Path) -> None:
    smtp_port = free_port()
    text = config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port)
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo, 0o600)
    log = (tmp_path / "daemon.log").open("ab")
    proc = subprocess.Popen(
        [*CLI, "--config", str(fifo), "run", "--json-logs"], cwd=ROOT, stdout=log, stderr=log
    )
    try:
        fd = await asyncio.to_thread(_writer_when_read, fifo, proc)
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.3)
        assert proc.poll() is None, f"ended by the HUP: {proc.returncode}"
        os.set_blocking(fd, True)
        os.write(fd, text.encode())
        os.close(fd)
        await until_listening(proc, smtp_port, tmp_path / "daemon.log", within=30)  # it goes on to listen
        proc.send_signal(signal.SIGHUP)  # and a HUP once it runs is logged, not obeyed
        await asyncio.sleep(0.2)
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.terminate()
        code = await asyncio.to_thread(proc.wait, 30)
        log.close()
    assert code == 0, (tmp_path / "daemon.log").read_text()[-2000:]


async def test_a_hup_while_run_still_imports_does_not_end_it(tmp_path: Path) -> None:
    # Ignored once the arguments were parsed: a HUP in the imports before (the first ~0.2 s) ended
    # `smsgw run` with status 129, which systemd takes for a clean stop.
    smtp_port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port))
    config.chmod(0o640)
    log = (tmp_path / "daemon.log").open("ab")
    proc = subprocess.Popen(
        [*signalled_at("gateway.cli.commands", "SIGHUP"), "--config", str(config), "run", "--json-logs"],
        cwd=ROOT,
        stdout=log,
        stderr=log,
    )
    try:
        await until_listening(proc, smtp_port, tmp_path / "daemon.log", within=30)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 60)
        log.close()
