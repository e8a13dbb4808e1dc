"""The daemon as a real process: crash after 250, graceful SIGTERM, config errors, admin CLI."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from tests.conftest import DOMAIN, config_text, free_port, mail, send_blocking
from tests.fakes.smsc import HappySMSC, SilentSMSC

CLI = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[1]


def smsgw(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        input=stdin,
        timeout=60,
    )


async def start_daemon(config: Path, smtp_port: int) -> subprocess.Popen[bytes]:
    log = config.parent / "daemon.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*CLI, "--config", str(config), "run", "--json-logs"], cwd=ROOT, stdout=out, stderr=out
        )
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited: {log.read_text()[-3000:]}")
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", smtp_port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        w.close()
        return proc
    proc.kill()
    raise AssertionError("daemon did not listen within 15 s")


async def send_marker(smsc: HappySMSC, smtp_port: int) -> None:
    """Send a later mail and wait for its SMS: anything queued before it (a duplicate) has gone by then."""
    res = await asyncio.to_thread(
        send_blocking, smtp_port, mail(f"601999999@{DOMAIN}", "Marker"), [f"601999999@{DOMAIN}"]
    )
    assert res.error is None
    await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received), timeout=20)


def write_config(tmp_path: Path, smsc_port: int, smtp_port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=smsc_port, smtp_port=smtp_port))
    return path


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
        assert "Traceback" not in out.stderr


def test_shipped_config_is_valid() -> None:
    # The README's first command runs on the shipped config.
    out = smsgw(ROOT / "config.toml", "check-config")
    assert out.returncode == 0, out.stderr


def test_admin_cli_accounts_users_and_queue(tmp_path: Path) -> None:
    # Accounts and users are managed from the CLI, with clear errors for mistakes.
    path = write_config(tmp_path, free_port(), free_port())
    assert smsgw(path, "account", "add", "beta", "--relay-network", "10.1.0.0/16").returncode == 0
    dup = smsgw(path, "account", "add", "beta")
    assert dup.returncode != 0 and "exists already" in dup.stderr
    bad = smsgw(path, "account", "add", "gamma", "--relay-network", "10.1.0.0/33")
    assert bad.returncode != 0 and "not a network" in bad.stderr
    assert smsgw(path, "user", "add", "bob@beta.example", "--account", "beta").returncode == 0
    missing = smsgw(path, "user", "add", "eve@x.example", "--account", "nope")
    assert missing.returncode != 0 and "no account named 'nope'" in missing.stderr
    assert "bob@beta.example" in smsgw(path, "user", "list").stdout
    assert smsgw(path, "user", "remove", "bob@beta.example").returncode == 0
    assert "no users" in smsgw(path, "user", "list", "--account", "beta").stdout
    assert smsgw(path, "queue", "retry", "42").returncode != 0
    status = smsgw(path, "status")
    assert status.returncode == 0 and "not running" in status.stdout
    # Account settings, suspension and opt-outs, with the mistakes an admin makes.
    assert (
        smsgw(
            path, "account", "set", "beta", "--monthly-limit", "100", "--quiet-hours", "21:00-08:00"
        ).returncode
        == 0
    )
    bad_window = smsgw(path, "account", "set", "beta", "--quiet-hours", "25:00-08:00")
    assert bad_window.returncode != 0 and "25:00" in bad_window.stderr
    assert smsgw(path, "account", "set", "beta").returncode != 0  # nothing to change
    assert smsgw(path, "account", "suspend", "beta").returncode == 0
    assert "SUSPENDED" in smsgw(path, "account", "list").stdout
    assert smsgw(path, "account", "resume", "beta").returncode == 0
    assert smsgw(path, "optout", "add", "601 123 456").returncode == 0
    assert "+48601123456" in smsgw(path, "optout", "list").stdout
    assert smsgw(path, "optout", "add", "12").returncode != 0
    assert smsgw(path, "optout", "remove", "+48601123456").returncode == 0
    assert "no opt-outs" in smsgw(path, "optout", "list").stdout


async def test_sigkill_during_data_keeps_nothing_of_the_partial_mail(tmp_path: Path) -> None:
    # F1: killed mid-DATA, the client never saw 250; after restart nothing of it exists, and the
    # client's retry is sent exactly once.
    smsc_port, smtp_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port)
    proc = await start_daemon(config, smtp_port)
    reader, writer = await asyncio.open_connection("127.0.0.1", smtp_port)

    async def reply() -> bytes:
        while (line := await reader.readline())[3:4] == b"-":
            pass
        return line

    assert (await reply()).startswith(b"220")
    commands = (
        b"EHLO client.example",
        b"MAIL FROM:<anna@acme.example>",
        f"RCPT TO:<601123456@{DOMAIN}>".encode(),
    )
    for command in commands:
        writer.write(command + b"\r\n")
        assert (await reply()).startswith(b"250")
    writer.write(b"DATA\r\n")
    assert (await reply()).startswith(b"354")
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
            assert "possible duplicate" in (tmp_path / "daemon.log").read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
