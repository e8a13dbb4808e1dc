"""The start's integrity check: a damaged database is refused before the queue is taken.

`smsgw run` reads the whole file (`PRAGMA quick_check`) before it takes the queue: a damaged file is
refused with exit status 3 (systemd does not restart into it) and a line that says what to do.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store.db import Store
from tests.conftest import config_text, free_port
from tests.test_process import smsgw


def filled(db: Path) -> None:
    """A database of the current schema with a few hundred pages of mail in it."""
    store = Store.open(db)
    with store.db.transaction():
        for n in range(3000):
            store.db.conn.execute(
                "INSERT INTO emails (account_id, mail_from, text, received_at) VALUES (NULL, 'a@b.c', ?, 1)",
                (f"mail {n} " + "x" * 200,),
            )
    store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def damage(db: Path) -> None:
    """The free-space pointer of the file's last page overwritten, as a torn write or a bad disk leaves it."""
    with sqlite3.connect(db) as conn:
        page_size, pages = (
            conn.execute("PRAGMA page_size").fetchone()[0],
            conn.execute("PRAGMA page_count").fetchone()[0],
        )
    with db.open("r+b") as f:
        f.seek((pages - 1) * page_size + 1)
        f.write(b"\x00\x01")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] != "ok"  # the fixture is damaged


def test_smsgw_run_refuses_a_damaged_database_with_exit_3(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    db = tmp_path / "state" / "smsgw.db"
    db.parent.mkdir(mode=0o750)
    filled(db)
    damage(db)
    res = smsgw(config, "run")
    assert res.returncode == 3, res.stderr
    assert "failed its integrity check" in res.stderr
    assert "restore it from a backup" in res.stderr
