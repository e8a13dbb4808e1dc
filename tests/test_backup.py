"""`smsgw backup`: a consistent copy of the live database while a real daemon process writes to it."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

from tests.conftest import DOMAIN, free_port, mail, send_blocking
from tests.test_process import smsgw, start_daemon, write_config


async def test_a_backup_taken_while_the_daemon_runs_holds_every_mail_answered_250(tmp_path: Path) -> None:
    # The daemon keeps its latest commits in smsgw.db-wal: a cp of smsgw.db alone lost mail already
    # answered 250, and nothing documented another way.
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)  # no SMSC: the SMS stay queued
    proc = await start_daemon(config, smtp_port)
    try:
        for i in range(3):
            to = f"60112300{i}@{DOMAIN}"
            assert (
                await asyncio.to_thread(send_blocking, smtp_port, mail(to, f"Kept {i}"), [to])
            ).error is None
        (tmp_path / "backups").mkdir()
        out = await asyncio.to_thread(smsgw, config, "backup", str(tmp_path / "backups"))
        assert out.returncode == 0, out.stderr
        assert "3 messages" in out.stdout
        (copy,) = (tmp_path / "backups").iterdir()
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert [p.name for p in (tmp_path / "backups").iterdir()] == [copy.name]  # no -wal, no temp file
        with closing(sqlite3.connect(copy)) as db:
            texts = [r[0] for r in db.execute("SELECT text FROM messages ORDER BY id")]
        assert texts == ["Kept 0", "Kept 1", "Kept 2"]
        again = await asyncio.to_thread(smsgw, config, "backup", str(copy))
        assert again.returncode == 1 and "exists" in again.stderr
        missing = await asyncio.to_thread(smsgw, config, "backup", f"{tmp_path / 'nightly'}/")
        assert missing.returncode == 2 and "does not exist; create it first" in missing.stderr
        assert not (tmp_path / "nightly").exists()  # not written as a file (the next night: "exists")
        live = await asyncio.to_thread(smsgw, config, "backup", str(tmp_path / "state" / "smsgw.db"))
        assert live.returncode == 2 and "live database itself" in live.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
