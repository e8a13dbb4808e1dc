"""The start's integrity check: a damaged database is refused before the queue is taken.

`smsgw run` reads the whole file (`PRAGMA quick_check`) before it takes the queue: a damaged file is
refused with exit status 3 (systemd does not restart into it) and a line that says what to do.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from gateway.store.db import Store, StoreUnusable
from tests.conftest import config_text, free_port, make_config, running_gateway
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


def damage_table_root(db: Path, table: str) -> int:
    """The cell pointers of `table`'s b-tree root overwritten with a byte pattern, as a bad sector
    or a torn write leaves a page: every child the page names now lies outside it. The file still
    opens (its schema page is whole); only reading the table, or the integrity check, meets it."""
    with closing(sqlite3.connect(db)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    start = (root - 1) * page_size
    with db.open("r+b") as f:
        f.seek(start)
        header = f.read(12)
        assert header[0] in (0x05, 0x0D), header  # a table b-tree page, interior or leaf
        cells = int.from_bytes(header[3:5], "big")
        f.seek(start + (12 if header[0] == 0x05 else 8))
        f.write(b"\xff\xf0" * cells)
    return root


async def test_the_daemon_refuses_a_damaged_btree_page_naming_the_file(tmp_path: Path) -> None:
    # F9 with a real database: a b-tree page of the mail table damaged in a file that otherwise
    # opens. The start refuses it naming the file and what to do, before any queue is taken;
    # without the check it would start and fail (or lose mail) at the first read of the table.
    db = tmp_path / "state" / "smsgw.db"
    db.parent.mkdir(mode=0o750)
    filled(db)
    damage_table_root(db, "emails")
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] != "ok"  # the fixture is damaged
    with pytest.raises(StoreUnusable) as refused:
        async with running_gateway(make_config(tmp_path, smsc_port=free_port())):
            pass
    said = str(refused.value)
    assert str(db) in said and "failed its integrity check" in said and "restore it from a backup" in said
