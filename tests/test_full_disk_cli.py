"""A command or a start on a full state disk says how much room is left and what to do, not only
SQLite's "database or disk is full" (systemd restarted the daemon, each start said just that), and
leaves nothing behind that keeps the gateway down once the room is made."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from gateway.store.db import Store
from tests.conftest import config_text, free_port
from tests.test_cli_errors import last_line, one_line, run, write_config
from tests.test_disk_full_wal import fill, small_tmpfs
from tests.test_process import start_daemon
from tests.test_process import write_config as daemon_config


def test_a_command_and_a_start_on_a_full_state_disk_say_the_room_left(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with small_tmpfs(state, 4 * 1024 * 1024):
        config = write_config(tmp_path, config_text(tmp_path, smsc_port=free_port()))
        store = Store.open(state / "smsgw.db")
        store.accounts.add_account("acme", sender="+48100200300")
        store.close()
        fill(state / "filler", 0)
        added = run(config, "user", "add", "anna@acme.example", "--account", "acme")
        started = run(config, "run")
    assert added.returncode != 0
    said = one_line(added)
    assert "bytes free on the filesystem of" in said, said
    assert started.returncode != 0
    line = last_line(started)
    assert "bytes free on the filesystem of" in line and "nothing accepted is lost" in line, line


async def test_a_first_start_on_a_full_disk_leaves_no_broken_certificate_and_the_next_start_runs(
    tmp_path: Path,
) -> None:
    # openssl exits 0 when it cannot write its output: the key in its pages, an empty certificate
    # beside it, and every start once the room was made exited 3 (systemd gave up) on that pair.
    for pages in (1, 2, 3):  # the lock file's page, then the key's, then the certificate's
        base = tmp_path / f"left-{pages}"
        base.mkdir()
        smtp_port = free_port()
        config = daemon_config(base, free_port(), smtp_port)  # submission on: a self-signed pair made
        state = base / "state"
        with small_tmpfs(state, 4 * 1024 * 1024):
            fill(state / "filler", pages * os.statvfs(state).f_frsize)
            started = run(config, "run")
            assert started.returncode == 1, started.stderr  # systemd starts it again
            line = last_line(started)
            assert "bytes free on the filesystem of" in line, line
            (state / "filler").unlink()
            proc = await start_daemon(config, smtp_port)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert b"-----END CERTIFICATE-----" in (state / "selfsigned-cert.pem").read_bytes()


async def test_an_incomplete_self_signed_pair_left_before_is_made_again(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = daemon_config(tmp_path, free_port(), smtp_port)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "selfsigned-key.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n")
    (state / "selfsigned-cert.pem").write_bytes(b"")  # as a full disk left it
    proc = await start_daemon(config, smtp_port)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert b"-----END CERTIFICATE-----" in (state / "selfsigned-cert.pem").read_bytes()
    assert b"-----END PRIVATE KEY-----" in (state / "selfsigned-key.pem").read_bytes()
    assert not [p for p in os.listdir(state) if p.startswith(".selfsigned")]  # no work files left


def test_a_backup_on_a_full_state_disk_says_the_room_left(tmp_path: Path) -> None:
    # SQLite cannot grow the -shm of the database it copies: "disk I/O error", said alone.
    state = tmp_path / "state"
    with small_tmpfs(state, 4 * 1024 * 1024):
        config = write_config(tmp_path, config_text(tmp_path, smsc_port=free_port()))
        Store.open(state / "smsgw.db").close()
        fill(state / "filler", 0)
        backup = run(config, "backup", str(tmp_path / "copy.db"))
    assert backup.returncode == 1
    said = one_line(backup)
    assert "disk I/O error" in said and "bytes free on the filesystem of" in said, said


def test_a_restore_on_a_full_state_disk_names_the_file_and_says_the_room_left(tmp_path: Path) -> None:
    # The lock file's pid could not be written: a bare "No space left on device", naming nothing.
    state = tmp_path / "state"
    with small_tmpfs(state, 4 * 1024 * 1024):
        config = write_config(tmp_path, config_text(tmp_path, smsc_port=free_port()))
        Store.open(state / "smsgw.db").close()
        assert run(config, "backup", str(tmp_path / "copy.db")).returncode == 0
        fill(state / "filler", 0)
        restore = run(config, "restore", str(tmp_path / "copy.db"), stdin="y\n")
    assert restore.returncode == 1
    said = one_line(restore)
    assert "smsgw.pid: No space left on device" in said and "bytes free on the filesystem of" in said, said
