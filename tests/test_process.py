"""The daemon as a real process: SIGTERM; config; CLI; a second daemon on the same state directory.

kill -9 mid-DATA, before the fsync, after 250 and with a submit unanswered has a module of its own
(test_process_sigkill.py). The helpers here (running the CLI and the daemon as processes, a raw
SMTP session, the fsync-holding shim) serve many other modules.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from gateway.store.db import Store
from tests.conftest import DOMAIN, config_text, free_port, mail, send_blocking
from tests.fakes.smsc import HappySMSC

CLI = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[1]
FSYNCHOLD_SOURCE = Path(__file__).resolve().parent / "faults" / "fsynchold.c"


def smsgw(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        input=stdin,
        timeout=60,
    )


# The console script's own lines, with a real signal sent to the process as it starts importing
# `module`: deterministic, where a signal after a delay hits an import window or not.
_SIGNALLED_AT = """
import os, signal, sys

class Signal:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            os.kill(os.getpid(), signal.{signal})
        return None

sys.meta_path.insert(0, Signal())
from gateway.cli.main import main
sys.exit(main())
"""


def signalled_at(module: str, signal_name: str) -> list[str]:
    """The command line of `smsgw` (its arguments to follow) that gets `signal_name` as `module`
    starts importing."""
    return [sys.executable, "-c", _SIGNALLED_AT.format(module=module, signal=signal_name)]


async def start_daemon(
    config: Path, smtp_port: int, *, env: dict[str, str] | None = None, new_session: bool = False
) -> subprocess.Popen[bytes]:
    """Run the daemon until its relay port answers; `env` replaces the environment, `new_session`
    puts the daemon and its worker processes in a process group of their own (for `os.killpg`)."""
    log = config.parent / "daemon.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*CLI, "--config", str(config), "run", "--json-logs"],
            cwd=ROOT,
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=new_session,
        )
    try:
        await until_listening(proc, smtp_port, log)
    except AssertionError:
        proc.kill()
        raise
    return proc


async def until_listening(proc: subprocess.Popen[bytes], port: int, log: Path, within: float = 15.0) -> None:
    """Until the daemon's relay port answers; it ending first, or not listening `within`, fails
    with the end of its log."""
    for _ in range(int(within / 0.05)):
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited: {_tail(log)}")
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        w.close()
        return
    raise AssertionError(f"daemon did not listen within {within:.0f} s: {_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def until_refused(port: int, timeout: float = 15.0) -> None:
    """Until nothing listens on the port any more (a killed process group's last socket closed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        w.close()
        await asyncio.sleep(0.05)
    raise AssertionError(f"port {port} still listening {timeout:g} s after the kill")


async def send_marker(smsc: HappySMSC, smtp_port: int) -> None:
    """Send a later mail and wait for its SMS: anything queued before it (a duplicate) has gone by then."""
    res = await asyncio.to_thread(
        send_blocking, smtp_port, mail(f"601999999@{DOMAIN}", "Marker"), [f"601999999@{DOMAIN}"]
    )
    assert res.error is None
    await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received), timeout=20)


def write_config(tmp_path: Path, smsc_port: int, smtp_port: int, *, intake_processes: int = 0) -> Path:
    path = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=smsc_port, smtp_port=smtp_port)
    if intake_processes:
        text = text.replace("[smtp]\n", f"[smtp]\nintake_processes = {intake_processes}\n", 1)
    path.write_text(text)
    return path


async def smtp_reply(reader: asyncio.StreamReader) -> bytes:
    """The last line of the next SMTP reply; b"" once the connection is closed or reset."""
    try:
        while (line := await reader.readline())[3:4] == b"-":
            pass
    except ConnectionError:
        return b""
    return line


async def open_data(smtp_port: int, rcpt: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw SMTP session on the relay port, up to the 354 of DATA."""
    reader, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
    assert (await smtp_reply(reader)).startswith(b"220")
    for command in (b"EHLO client.example", b"MAIL FROM:<anna@acme.example>", f"RCPT TO:<{rcpt}>".encode()):
        writer.write(command + b"\r\n")
        assert (await smtp_reply(reader)).startswith(b"250")
    writer.write(b"DATA\r\n")
    assert (await smtp_reply(reader)).startswith(b"354")
    return reader, writer


def build_fsynchold(tmp_path: Path) -> Path:
    """tests/faults/fsynchold.c built with the system C compiler, for LD_PRELOAD."""
    cc = shutil.which("cc")
    if cc is None:
        why = "no C compiler (cc) to build tests/faults/fsynchold.c: install gcc and libc6-dev"
        if os.environ.get("CI", "").lower() in {"true", "1"}:
            pytest.fail(f"{why}; CI must run this test, not skip it")
        pytest.skip(why)
    shim = tmp_path / "fsynchold.so"
    built = subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-o", str(shim), str(FSYNCHOLD_SOURCE), "-ldl"],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, f"building {FSYNCHOLD_SOURCE.name} failed:\n{built.stderr}"
    return shim


def wait_for_text(path: Path, timeout: float) -> str:
    """The text of `path` once it exists (for `asyncio.to_thread`)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} did not appear within {timeout} s")
        time.sleep(0.02)
    return path.read_text()


async def test_sigterm_stops_cleanly_and_keeps_the_queue(tmp_path: Path) -> None:
    # F10: SIGTERM exits 0; mail accepted but not yet sent is still queued afterwards.
    smsc_port, smtp_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port)
    proc = await start_daemon(config, smtp_port)
    res = await asyncio.to_thread(
        send_blocking, smtp_port, mail(f"601123456@{DOMAIN}", "Kept"), [f"601123456@{DOMAIN}"]
    )
    assert res.error is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    db = sqlite3.connect(tmp_path / "state" / "smsgw.db")
    assert db.execute("SELECT state FROM parts").fetchall() == [("queued",)]


def test_config_typo_is_refused_naming_the_key(tmp_path: Path) -> None:
    # a misspelt key stops the start with the key named, before anything listens.
    text = config_text(tmp_path, smsc_port=free_port()).replace("max_per_second", "max_per_secnd")
    path = tmp_path / "config.toml"
    path.write_text(text)
    for args in (("check-config",), ("run",)):
        out = smsgw(path, *args)
        assert out.returncode != 0
        assert "max_per_secnd" in out.stderr and "unknown key" in out.stderr
        nearest = '[[smsc]] "main" max_per_secnd: unknown key (did you mean max_per_second?)'
        assert nearest in out.stderr  # the section's nearest key
        assert "Traceback" not in out.stderr


def test_a_database_no_restart_can_open_stops_with_the_status_systemd_keeps(tmp_path: Path) -> None:
    # A database newer than this smsgw (or damaged) exited 1: systemd restarted the daemon every 5 s
    # for ever, the same error each time. Exit 3 is the unit's RestartPreventExitStatus.
    config = write_config(tmp_path, free_port(), free_port())
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    Store.open(state / "smsgw.db").close()
    with closing(sqlite3.connect(state / "smsgw.db")) as db, db:
        db.execute("UPDATE schema_version SET version = 99")
    out = smsgw(config, "run")
    assert out.returncode == 3, out.stderr
    assert "schema version 99, newer than this smsgw understands" in out.stderr
    assert "Traceback" not in out.stderr


def test_shipped_config_is_valid() -> None:
    # The README's first command runs on the shipped config.
    out = smsgw(ROOT / "config.toml", "check-config")
    assert out.returncode == 0, out.stderr


async def test_a_second_daemon_on_the_same_state_dir_is_refused_even_on_other_ports(tmp_path: Path) -> None:
    # Two daemons on one database would both claim and send from one queue. Ports do not show it
    # (the second config names others); the state directory's lock does, and a killed daemon's lock
    # goes with its process.
    smsc_port, smtp_port, other_port = free_port(), free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port)
    other = tmp_path / "other.toml"
    other.write_text(config.read_text().replace(f"127.0.0.1:{smtp_port}", f"127.0.0.1:{other_port}"))
    proc = await start_daemon(config, smtp_port)
    try:
        res = smsgw(other, "run")
        assert res.returncode == 1
        assert f"smsgw is already running (pid {proc.pid})" in res.stderr and "Traceback" not in res.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc = await start_daemon(other, other_port)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
