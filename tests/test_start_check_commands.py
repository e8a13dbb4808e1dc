"""An admin's `smsgw` command run beside the daemon never writes the database file, so the daemon's
clean stop still lets the next start skip its whole-file check (`gateway.store.besidedaemon`).

A command's commit crossing SQLite's automatic checkpoint (`smsgw user add` with 4 MB in the WAL,
where the daemon lets it grow to 16 MB), or its checkpoint at close (`smsgw user passwd`, `auth
unlock`, always), copied pages into the file: the daemon's stop then left no record and the next
start read the whole file (8-13 s on 3.9 GB). The daemon, the commands and the file are all real.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from gateway.store import besidedaemon, walcheck
from tests.conftest import DOMAIN, STAFF, free_port, mail, send_blocking
from tests.test_process import CLI, ROOT, smsgw, start_daemon, until_listening, write_config
from tests.test_start_check import logged, stop_record

PASSWORD = "Correct-horse-battery-9\n" * 2
AUTO_CHECKPOINT_PAGES = 1000  # SQLite's default `wal_autocheckpoint`, which a command's connection has


def file_as_is(db: Path) -> tuple[int, int, int]:
    st = os.stat(db)
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


def wal_pages(db: Path) -> int:
    try:
        size = Path(f"{db}-wal").stat().st_size
    except FileNotFoundError:
        return 0
    return max(size - 32, 0) // (4096 + 24)


async def past_auto_checkpoint(db: Path, smtp_port: int) -> None:
    """Mail accepted until the WAL holds more frames than a command's commit would checkpoint at
    (the daemon itself checkpoints only at 16 MB): queued, as no SMSC is reachable."""
    for n in range(400):
        if wal_pages(db) > AUTO_CHECKPOINT_PAGES + 20:
            return
        msg = mail(f"601123456@{DOMAIN}", f"traffic {n}")
        sent = await asyncio.to_thread(send_blocking, smtp_port, msg, [f"601123456@{DOMAIN}"])
        assert sent.error is None
    raise AssertionError(f"the WAL stayed at {wal_pages(db)} pages")


def command(config: Path, *args: str, stdin: str | None = None) -> None:
    res = smsgw(config, *args, stdin=stdin)
    assert res.returncode == 0, res.stderr


async def test_commands_beside_the_daemon_leave_its_clean_stop_and_the_next_starts_skip(
    tmp_path: Path,
) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    proc = await start_daemon(config, smtp_port)  # the first start: the file created
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    proc = await start_daemon(config, smtp_port)
    try:
        await past_auto_checkpoint(db, smtp_port)
        before = file_as_is(db)
        command(config, "user", "add", "bob@acme.example", "--account", "acme")  # past the threshold
        command(config, "optout", "add", "+48601999999")
        command(config, "user", "passwd", STAFF, stdin=PASSWORD)  # closes its store: its checkpoint
        assert file_as_is(db) == before  # every commit in the WAL, for the daemon's checkpoints
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
    assert logged(config, "store.stop_not_recorded") == []
    assert stop_record(db).exists()
    # The daemon's closing checkpoint took the commands' commits into the file, and emptied the WAL.
    assert wal_pages(db) == 0 and not stop_record(db).with_suffix(".wal-in-use").exists()
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        users = conn.execute("SELECT email, password_hash IS NOT NULL FROM users ORDER BY email").fetchall()
        assert ("bob@acme.example", 0) in users and (STAFF, 1) in users
        assert conn.execute("SELECT count(*) FROM optouts").fetchone()[0] == 1
    proc = await start_daemon(config, smtp_port)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    skipped = logged(config, "store.check_skipped")
    assert len(skipped) == 3 and "stopped cleanly and unchanged since" in skipped[-1]["why"], skipped
    assert logged(config, "store.checked") == []


async def test_a_commit_beside_the_daemon_outlives_its_crash(tmp_path: Path) -> None:
    # No command checkpoints now: the commit is the WAL's alone when the daemon is killed.
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    proc = await start_daemon(config, smtp_port)
    try:
        await past_auto_checkpoint(db, smtp_port)
        before = file_as_is(db)
        command(config, "user", "add", "bob@acme.example", "--account", "acme")
        command(config, "user", "passwd", STAFF, stdin=PASSWORD)
        assert file_as_is(db) == before  # the commits are in the WAL alone as the daemon is killed
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    proc = await start_daemon(config, smtp_port)  # the crash's WAL taken in, the file checked
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    checked = logged(config, "store.checked")
    assert len(checked) == 1 and "crashed" in checked[0]["why"], checked
    listed = smsgw(config, "user", "list")
    assert "bob@acme.example" in listed.stdout, listed
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        sql = "SELECT password_hash IS NOT NULL FROM users WHERE email = ?"
        assert conn.execute(sql, (STAFF,)).fetchone() == (1,)


async def test_a_command_run_with_the_daemon_stopped_leaves_the_next_start_its_check(
    tmp_path: Path,
) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    for _ in range(2):
        proc = await start_daemon(config, smtp_port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert stop_record(db).exists()
    before = file_as_is(db)
    command(config, "user", "add", "bob@acme.example", "--account", "acme")
    assert file_as_is(db) != before  # checkpointed into the file as it closed, as always
    proc = await start_daemon(config, smtp_port)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    checked = logged(config, "store.checked")
    assert len(checked) == 1 and "changed since the last stop" in checked[0]["why"], checked


def test_only_another_process_holding_the_daemons_lock_is_the_daemon(tmp_path: Path) -> None:
    from gateway import statelock

    db = tmp_path / "smsgw.db"
    assert not besidedaemon.daemon_runs(db)  # no daemon ever ran here
    with statelock.held(tmp_path):  # this process's own lock: the daemon's own close checkpoints
        assert not besidedaemon.daemon_runs(db)
    script = (
        "import sys; from pathlib import Path; from gateway import statelock;"
        " statelock.claim(Path(sys.argv[1])); print('held', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert besidedaemon.daemon_runs(db)
        assert statelock.daemon_pid(tmp_path) == holder.pid  # another process's shared look takes no WRITE
        assert besidedaemon.daemon_runs(db)
    finally:
        holder.communicate("", timeout=10)
    assert not besidedaemon.daemon_runs(db)


def in_own_pid_namespace() -> list[str]:
    """The words that run a command in a PID namespace of its own under this /proc (`unshare`
    without --mount-proc): /proc/locks there names the command's locks by their pids here."""
    words = ["unshare", "--pid", "--fork", "--kill-child"]  # the daemon ends with it
    tried = subprocess.run([*words, "true"], capture_output=True, text=True)
    if tried.returncode != 0:
        why = f"cannot make a PID namespace (needs root): {tried.stderr.strip()}"
        if os.environ.get("CI", "").lower() in {"true", "1"}:
            pytest.fail(f"{why}; CI must run this test, not skip it")
        pytest.skip(why)
    return words


def forked(pid: int) -> int:
    """The one child of `pid` (the daemon `unshare --fork` started), by its pid here."""
    [child] = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(child)


async def test_a_daemon_in_a_pid_namespace_of_its_own_still_checkpoints_at_its_clean_stop(
    tmp_path: Path,
) -> None:
    # It read its own lock in /proc/locks under its pid out there, took itself for a daemon beside
    # it, and skipped its closing checkpoint: the WAL was left full beside a reader open at the stop.
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    log = tmp_path / "daemon.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*in_own_pid_namespace(), *CLI, "--config", str(config), "run", "--json-logs"],
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
    try:
        await until_listening(proc, smtp_port, log)
        msg = mail(f"601123456@{DOMAIN}", "queued")
        assert (await asyncio.to_thread(send_blocking, smtp_port, msg, [f"601123456@{DOMAIN}"])).error is None
        daemon = forked(proc.pid)
        with closing(sqlite3.connect(db)) as reader:  # `smsgw status` of a monitoring check, say
            assert reader.execute("SELECT count(*) FROM messages").fetchone() == (1,)
            os.kill(daemon, signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert wal_pages(db) == 0  # its commits in the file, the WAL emptied as it closed
            assert walcheck.CHECKPOINTED in walcheck.flag_path(db).read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
