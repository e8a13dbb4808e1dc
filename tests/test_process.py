"""The daemon as a real process: kill -9 mid-DATA, before the fsync, after 250; SIGTERM; config; CLI."""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

import pytest

from gateway.store.db import Store
from tests.conftest import DOMAIN, config_text, free_port, mail, send_blocking
from tests.fakes.smsc import HappySMSC, SilentSMSC

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


async def test_sigkill_after_250_sends_the_sms_exactly_once(tmp_path: Path) -> None:
    # F3: 250 means on disk; after kill -9 and a restart the queued SMS goes out once.
    smsc_port, smtp_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port)
    proc = await start_daemon(config, smtp_port)  # no SMSC yet: nothing can be submitted
    res = await asyncio.to_thread(
        send_blocking, smtp_port, mail(f"601123456@{DOMAIN}", "Survive a crash"), [f"601123456@{DOMAIN}"]
    )
    assert res.error is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    async with HappySMSC(port=smsc_port) as smsc:
        proc = await start_daemon(config, smtp_port)
        try:
            await smsc.wait_for(1, timeout=20)
            await send_marker(smsc, smtp_port)
            assert [s.text for s in smsc.received] == ["Survive a crash", "Marker"]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


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


async def test_sigkill_mid_data_keeps_nothing_of_the_unfinished_mail(tmp_path: Path) -> None:
    # Killed while the body is still arriving (the end of data never sent): after restart nothing of
    # that mail exists, and the client's retry is sent exactly once. Whether a 250 can come before the
    # fsync is the next test's question.
    smsc_port, smtp_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port)
    proc = await start_daemon(config, smtp_port)
    _reader, writer = await open_data(smtp_port, f"601123456@{DOMAIN}")
    writer.write(b"Subject: half\r\n\r\nThis mail never ends")
    await writer.drain()
    await asyncio.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    writer.close()
    async with HappySMSC(port=smsc_port) as smsc:
        proc = await start_daemon(config, smtp_port)
        try:
            res = await asyncio.to_thread(
                send_blocking, smtp_port, mail(f"601123456@{DOMAIN}", "The retry"), [f"601123456@{DOMAIN}"]
            )
            assert res.error is None
            await smsc.wait_for(1, timeout=20)  # a stored partial mail would have been queued first
            assert [s.text for s in smsc.received] == ["The retry"]
            with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as db:
                assert db.execute("SELECT COUNT(*) FROM emails").fetchone() == (1,)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize("intake_processes", [0, 1], ids=["relay-in-daemon", "relay-in-worker"])
async def test_sigkill_before_the_fsync_no_250_and_the_retry_sends_one_sms(
    tmp_path: Path, intake_processes: int
) -> None:
    # F1: the whole mail has arrived and is committed, but the fsync of the WAL does not return
    # (tests/faults/fsynchold.c holds it from outside the daemon). Until it returns the client must
    # hear nothing; killed with -9 then, the daemon never said 250, nor anything else: the connection
    # drops (a relay worker whose daemon is gone cannot know whether the mail was committed, and a
    # 451 would make a retry without a Message-ID a second SMS). The client retries the same mail.
    # The committed copy survives a process kill (the page cache has it), so after the restart the
    # retry must be answered 250 and recognised as that mail: one SMS, not two.
    shim = build_fsynchold(tmp_path)
    smsc_port, smtp_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port, intake_processes=intake_processes)
    db_path = tmp_path / "state" / "smsgw.db"
    rcpt = f"601123456@{DOMAIN}"
    token = f"held-{uuid.uuid4().hex}"
    text = f"Held fsync {token}"
    raw = mail(rcpt, text, Message_ID=f"<{token}@client.example>").as_bytes(policy=email.policy.SMTP)
    trigger, marker = tmp_path / "hold-fsync", tmp_path / "fsync-held"
    env = {
        **os.environ,
        "LD_PRELOAD": " ".join(filter(None, [str(shim), os.environ.get("LD_PRELOAD")])),
        "FSYNCHOLD_TRIGGER": str(trigger),
        "FSYNCHOLD_MARKER": str(marker),
        # Only a file holding this mail is held: an fsync of other work (the outbox's polling
        # write, a billing file) goes through, so the fsync held is the one this mail waits for.
        "FSYNCHOLD_NEEDLE": token,
    }
    proc = await start_daemon(config, smtp_port, env=env, new_session=True)  # no SMSC: nothing is sent
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await open_data(smtp_port, rcpt)
        trigger.touch()
        writer.write(raw + b".\r\n")
        await writer.drain()
        held = (await asyncio.to_thread(wait_for_text, marker, 20)).split()
        assert held[1].endswith("/smsgw.db-wal"), f"the fsync held is not the WAL's: {held}"
        try:
            early = await asyncio.wait_for(smtp_reply(reader), timeout=1.0)
        except TimeoutError:
            early = None
        assert early is None, f"the end of data was answered {early!r} while the WAL fsync had not returned"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        late = await asyncio.wait_for(smtp_reply(reader), timeout=20)
        assert late == b"", f"after the kill the client heard {late!r}"
    finally:
        if writer is not None:
            writer.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the daemon and any worker of it still running
        proc.wait()
        trigger.unlink(missing_ok=True)
        # The worker dies a moment after the daemon: its copy of the listening socket would take the
        # restarted daemon's first connections (start_daemon's probe, then the retry, reset).
        await until_refused(smtp_port)
    with closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as db:
        # Committed before its fsync: the retry below meets a copy of itself already queued.
        assert db.execute("SELECT COUNT(*) FROM emails").fetchone() == (1,)
    async with HappySMSC(port=smsc_port) as smsc:
        proc = await start_daemon(config, smtp_port)
        try:
            res = await asyncio.to_thread(send_blocking, smtp_port, raw, [rcpt])
            assert res.error is None and res.refused == {}
            await smsc.wait_for(1, timeout=20)
            await send_marker(smsc, smtp_port)
            assert [s.text for s in smsc.received] == [text, "Marker"]
            with closing(sqlite3.connect(db_path)) as db:
                assert db.execute("SELECT COUNT(*) FROM emails WHERE text = ?", (text,)).fetchone() == (1,)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


async def test_sigkill_with_a_submit_unanswered_resends_it_once_and_logs_it(tmp_path: Path) -> None:
    # F4: killed after submit_sm went out and before its answer was recorded: after restart the part
    # is sent again (at-least-once, at most one extra), logged as a possible duplicate, and its DLR
    # still settles the message.
    smtp_port = free_port()
    async with SilentSMSC() as silent:
        config = write_config(tmp_path, silent.port, smtp_port)
        proc = await start_daemon(config, smtp_port)
        res = await asyncio.to_thread(
            send_blocking, smtp_port, mail(f"601123456@{DOMAIN}", "In flight"), [f"601123456@{DOMAIN}"]
        )
        assert res.error is None
        await silent.wait_for(1, timeout=20)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        port = silent.port
    async with HappySMSC(port=port) as smsc:
        proc = await start_daemon(config, smtp_port)
        try:
            await smsc.wait_for(1, timeout=20)
            db = sqlite3.connect(tmp_path / "state" / "smsgw.db")
            for _ in range(200):
                if db.execute("SELECT state FROM messages").fetchall() == [("delivered",)]:
                    break
                await asyncio.sleep(0.05)
            assert db.execute("SELECT state FROM messages").fetchall() == [("delivered",)]
            await send_marker(smsc, smtp_port)
            assert [s.text for s in smsc.received] == ["In flight", "Marker"]
            # The re-send itself, not only the start's count of recovered parts, says so.
            assert '"event":"mt.possible_duplicate"' in (tmp_path / "daemon.log").read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


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
