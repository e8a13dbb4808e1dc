"""A database file reached by a second name (a hard link) from another state_dir is refused.

The state directory's lock keeps a second daemon out of the same directory only. A second config
whose state_dir held a hard link to the first's database started beside the running daemon: both
took mail on one file, each with its own WAL, both answered "queued as 20", and the mail the second
accepted was gone after the first restarted. A symbolic link was refused already; a hard link was
not. The daemon here runs for real, the second one is started for real, and the commands are run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import DOMAIN, config_text, free_port, mail, send_blocking
from tests.test_process import CLI, ROOT, smsgw, start_daemon, write_config


def second_config(tmp_path: Path) -> Path:
    """Another installation's config: its own ports, its own state_dir (which holds the link)."""
    other = tmp_path / "other"
    other.mkdir()
    path = other / "config.toml"
    path.write_text(config_text(other, smsc_port=free_port(), smtp_port=free_port()))
    return path


async def test_a_second_daemon_on_a_hard_link_of_the_running_ones_database_is_refused(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)  # no SMSC: the SMS stay queued
    proc = await start_daemon(config, smtp_port)
    try:
        to = f"601123000@{DOMAIN}"
        assert (await asyncio.to_thread(send_blocking, smtp_port, mail(to, "Before"), [to])).error is None
        db = tmp_path / "state" / "smsgw.db"
        other = second_config(tmp_path)
        (other.parent / "state").mkdir(mode=0o750)
        linked = other.parent / "state" / "smsgw.db"
        os.link(db, linked)
        started = await asyncio.to_thread(
            subprocess.run,
            [*CLI, "--config", str(other), "run"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert started.returncode == 3, (started.stdout, started.stderr)  # not restarted by systemd
        said = " ".join(started.stderr.split())
        assert f"database {linked} has 2 names (hard links to one file)" in said, said
        assert f"find / -xdev -samefile {linked}" in said and "never `ln`" in said, said
        # README's Backups: "Do not `cp` `smsgw.db`" (the mail in its -wal is missed); said so here too.
        assert "made with `smsgw backup`, never `ln`, nor `cp`" in said and "backup` or `cp`" not in said, (
            said
        )
        assert not await asyncio.to_thread(Path(f"{linked}-wal").exists)  # it never opened the file
        # A command on either name refuses too (every command may write: it upgrades the schema).
        for each in (other, config):
            out = await asyncio.to_thread(smsgw, each, "account", "add", "beside")
            assert out.returncode == 3 and "has 2 names" in out.stderr, (each, out.stderr)
            assert "Traceback" not in out.stderr
        assert proc.poll() is None  # the daemon that ran first goes on
        linked.unlink()
        out = await asyncio.to_thread(smsgw, config, "account", "add", "afterwards")
        assert out.returncode == 0, out.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0


async def test_status_on_a_hard_linked_database_says_the_daemon_runs_and_exits_1(tmp_path: Path) -> None:
    # `status` refused the file as every command does, with the refusal's code 3, "not running", while
    # the daemon ran on it: a monitoring check paged for a stopped gateway that took mail.
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    proc = await start_daemon(config, smtp_port)
    other = second_config(tmp_path)
    (other.parent / "state").mkdir(mode=0o750)
    try:
        os.link(tmp_path / "state" / "smsgw.db", other.parent / "state" / "smsgw.db")
        res = await asyncio.to_thread(smsgw, config, "status")
        assert res.returncode == 1 and "has 2 names" in res.stderr, (res.stdout, res.stderr)
        assert "daemon    running" in res.stdout, res.stdout
        res = await asyncio.to_thread(smsgw, config, "status", "--json")
        assert res.returncode == 1 and '"state": "running"' in res.stdout, (res.stdout, res.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    res = await asyncio.to_thread(smsgw, config, "status")  # stopped: not running, whatever the file
    assert res.returncode == 3 and "daemon    not running" in res.stdout, (res.stdout, res.stderr)
    res = await asyncio.to_thread(smsgw, other, "status")  # no daemon ever ran on the other state_dir
    assert res.returncode == 3, (res.stdout, res.stderr)
