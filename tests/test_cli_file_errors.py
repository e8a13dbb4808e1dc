"""The CLI against files it must not write, roots it cannot write under, and Ctrl-C at its start.

`backup --force var/smsgw.db-wal` (tab completion's next offer after smsgw.db) wrote over the live
WAL and said "backup written": the running daemon stopped, and a command run meanwhile read a
malformed database. `install-service --root` on a file or a directory no one may write in, and any
file error no command foresaw, ended in a traceback; so did a Ctrl-C while Python still imported.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.store.db import Store
from tests.conftest import DOMAIN, free_port, mail, send_blocking, unwritable
from tests.test_process import CLI, ROOT, signalled_at, smsgw, start_daemon, write_config


def env() -> dict[str, str]:
    out = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT))}
    out.pop("SMSGW_CONFIG", None)
    return out


async def test_a_backup_over_the_live_wal_or_another_daemon_file_is_refused_and_the_daemon_goes_on(
    tmp_path: Path,
) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)  # no SMSC: the SMS stay queued
    proc = await start_daemon(config, smtp_port)
    state = tmp_path / "state"
    try:
        to = f"601123000@{DOMAIN}"
        assert (await asyncio.to_thread(send_blocking, smtp_port, mail(to, "Before"), [to])).error is None
        wal = state / "smsgw.db-wal"
        assert wal.stat().st_size > 0  # live: the daemon's commits are in it
        wal_file = (wal.stat().st_dev, wal.stat().st_ino)
        (tmp_path / "wal-link").symlink_to(wal)
        os.link(wal, tmp_path / "wal-hard")
        refused = {
            str(wal): "the live database's WAL",
            f"{state}/./smsgw.db-shm": "WAL index",
            f"{tmp_path}/state/../state/smsgw.db-journal": "rollback journal",  # none yet: by its name
            str(tmp_path / "wal-link"): "the live database's WAL",
            str(tmp_path / "wal-hard"): "the same file by another name",
            str(state / "smsgw.db"): "live database itself",
            str(state / "smsgw.pid"): "lock file",
            str(state / "status.json"): "status file",
            str(state / "relay-logins.json"): "relay's failed logins",  # none yet: by its name
            str(state / ".tls-selfsigned.lock"): "self-signed TLS pair",
            str(state / "smsgw.db.id"): "a file of the daemon's state_dir",
            f"{state}/": "a file of the daemon's state_dir",  # a dated backup in it
        }
        for path, said in refused.items():
            out = await asyncio.to_thread(smsgw, config, "backup", "--force", path)
            assert out.returncode == 2, (path, out.stdout, out.stderr)
            assert said in out.stderr and "a backup is never written there" in out.stderr, (path, out.stderr)
            assert "Traceback" not in out.stderr and "backup written" not in out.stdout
        assert (wal.stat().st_dev, wal.stat().st_ino) == wal_file
        assert (tmp_path / "wal-hard").stat().st_ino == wal_file[1]  # the WAL kept its other name too
        assert not [p for p in state.iterdir() if p.name.startswith("smsgw-")]
        # The daemon noticed nothing: it takes mail, and a command writes beside it.
        added = await asyncio.to_thread(smsgw, config, "account", "add", "walvictim")
        assert added.returncode == 0, added.stderr
        assert (await asyncio.to_thread(send_blocking, smtp_port, mail(to, "After"), [to])).error is None
        listed = await asyncio.to_thread(smsgw, config, "account", "list")
        assert listed.returncode == 0 and "walvictim" in listed.stdout, listed.stderr
        (state / "backups").mkdir()  # a directory of the admin's below state_dir is no daemon file
        kept = await asyncio.to_thread(smsgw, config, "backup", str(state / "backups"))
        assert kept.returncode == 0 and "2 messages" in kept.stdout, kept.stderr
        assert proc.poll() is None
        assert "file_replaced" not in (tmp_path / "daemon.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0


def test_a_restore_from_a_hard_link_of_the_live_database_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    db = tmp_path / "state" / "smsgw.db"
    db.parent.mkdir()
    Store.open(db).close()
    before = db.stat().st_ino
    os.link(db, tmp_path / "copy.db")
    out = smsgw(config, "restore", str(tmp_path / "copy.db"))
    assert out.returncode == 2 and "is the live database itself" in out.stderr, (out.stdout, out.stderr)
    assert db.stat().st_ino == before  # not replaced by itself, with a copy set aside


def install(root: Path) -> subprocess.CompletedProcess[str]:
    command = [*CLI, "install-service", "--root", str(root), "--exec", f"{sys.executable} -m gateway.cli"]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env(), timeout=60)


def test_install_service_under_a_file_or_an_unwritable_root_says_which_path(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("mine\n")
    out = install(plain)
    assert out.returncode == 2 and f"--root {plain} is not a directory" in out.stderr, out.stderr
    assert plain.read_text() == "mine\n"
    under_file = tmp_path / "r1"
    under_file.mkdir()
    (under_file / "etc").write_text("")
    out = install(under_file)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"cannot write {under_file}/etc/smsgw: Not a directory" in out.stderr, out.stderr
    locked = tmp_path / "r2"
    locked.mkdir()
    with unwritable(locked):
        out = install(locked)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"cannot write {locked}/etc:" in out.stderr and "give another --root" in out.stderr, out.stderr
    assert list(locked.iterdir()) == []


def test_a_file_error_no_command_foresaw_is_one_line_naming_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    # No descriptor left past stdin, stdout and stderr: the first file the command opens fails.
    entry = (
        "import resource, sys\nfrom gateway.cli.main import main\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (3, 3))\nsys.exit(main(sys.argv[1:]))"
    )
    command = [sys.executable, "-c", entry, "--config", str(config), "account", "list"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env(), timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    (line,) = out.stderr.splitlines()
    assert line.startswith("smsgw: /") and line.endswith(": Too many open files"), line


@pytest.mark.parametrize(
    "module",
    [
        "gateway.cli.commands",  # the imports of gateway.cli.main itself
        "gateway.tornline",  # main's first import
        "gateway.config",  # main's imports past the arguments, before the command's try
    ],
)
def test_ctrl_c_while_python_still_imports_exits_130_without_a_traceback(tmp_path: Path, module: str) -> None:
    config = write_config(tmp_path, free_port(), free_port())
    (tmp_path / "state").mkdir()
    Store.open(tmp_path / "state" / "smsgw.db").close()
    command = [*signalled_at(module, "SIGINT"), "--config", str(config), "account", "add", "interrupted"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env(), timeout=60)
    assert out.returncode == 130, (out.returncode, out.stderr)
    assert out.stderr == "" and out.stdout == ""
    listed = smsgw(config, "account", "list")
    assert listed.returncode == 0 and "interrupted" not in listed.stdout, listed.stderr
