"""A database that contradicts itself is store trouble: /healthz 503 and `smsgw status` exit 1.

A backup copied over the file of the running daemon left rows referring to users no longer in the
file: every mail then failed with "FOREIGN KEY constraint failed" (451), while /healthz answered 200
and `smsgw status` exited 0, because only the disk's refusals (full, I/O errors) counted.
The same file, changed under the daemon, is made here with SQLite: the sender's user row is deleted
and the settings generation put back as it was, so the daemon's cache still knows the user, as it
did after the copy.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.housekeeping import read_status
from gateway.smtp import replies
from gateway.smtp.accept import accept
from gateway.store.db import Store
from tests.conftest import STAFF, Running, config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_faults import smtp_code, to
from tests.test_process import smsgw
from tests.test_store import acceptance
from tests.test_web_browser import WEB, _get


def remove_the_sender_underneath(gw: Running) -> None:
    with closing(sqlite3.connect(gw.config.db_path)) as c:  # foreign keys off, as a copied file has them
        (generation,) = c.execute("SELECT value FROM settings_generation").fetchone()
        c.execute("DELETE FROM users WHERE email = ? COLLATE NOCASE", (STAFF,))
        c.execute("UPDATE settings_generation SET value = ?", (generation,))
        c.commit()


async def test_mail_failing_on_a_damaged_database_makes_healthz_and_status_report_the_store(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    async with HappySMSC() as smsc:
        config.write_text(config_text(tmp_path, smsc_port=smsc.port) + WEB)
        config.chmod(0o640)
        async with running_gateway(load_config(config)) as gw:
            health = f"http://127.0.0.1:{gw.daemon.web.port}/healthz"
            assert (await gw.send(mail(to("601123456"), "Before"))).error is None
            remove_the_sender_underneath(gw)
            res = await gw.send(mail(to("601123457"), "After"))
            assert smtp_code(res) == 451, res
            # One alone is the race of a user removed while their mail's DATA was arriving.
            assert (await asyncio.to_thread(_get, health))[0] == 200
            for n in (8, 9):  # every mail failing is not
                assert smtp_code(await gw.send(mail(to(f"60112345{n}"), "After"))) == 451
            refused_at = time.time()
            status, text = await asyncio.to_thread(_get, health)
            assert status == 503, text
            assert text.startswith("store failing for ") and "FOREIGN KEY constraint failed" in text, text
            state_dir = gw.config.state_dir
            await gw.until(lambda: (read_status(state_dir) or {}).get("updated_at", 0) > refused_at, 10)
            res = await asyncio.to_thread(smsgw, config, "status")
            assert not gw.task.done()  # reported, not a reason to stop
    assert res.returncode == 1, res.stdout  # running, in trouble
    assert "store     failing since " in res.stdout and "FOREIGN KEY constraint failed" in res.stdout


def stale_index_entry(db: Path) -> None:
    """An entry of the index `messages_state` for a row the table no longer has: what SQLite
    answers "database disk image is malformed" to when a write reaches it. quick_check passes."""
    with closing(sqlite3.connect(db)) as c:
        row = c.execute(
            "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master WHERE name = 'messages_state'"
        )
        saved = row.fetchone()
        c.execute("PRAGMA writable_schema = ON")
        c.execute("DELETE FROM sqlite_master WHERE name = 'messages_state'")
        c.commit()
    with closing(sqlite3.connect(db)) as c:
        c.execute("DELETE FROM messages WHERE id = (SELECT MIN(id) FROM messages)")
        c.commit()
    with closing(sqlite3.connect(db)) as c:
        c.execute("PRAGMA writable_schema = ON")
        c.execute("INSERT INTO sqlite_master VALUES (?, ?, ?, ?, ?)", saved)
        c.commit()
    with closing(sqlite3.connect(db)) as c:
        assert c.execute("PRAGMA quick_check").fetchone()[0] == "ok"


async def test_a_background_write_that_finds_the_file_malformed_is_store_trouble(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    s = Store.open(path, group_fsync=True)
    s.db.serve()
    await accept(s, acceptance(["+48601000001", "+48601000002"]))
    s.close()
    stale_index_entry(path)
    s = Store.open(path, group_fsync=True)
    s.db.serve()
    try:
        assert s.db.trouble() is None
        # A claim of queued SMS, as the dispatcher's: it reads the rows the index names, then writes.
        sql = "SELECT id, text FROM messages WHERE state = 'queued'"
        with pytest.raises(sqlite3.DatabaseError, match="malformed"):
            await s.write(lambda: s.db.conn.execute(sql).fetchall())
        trouble = s.db.trouble()
        assert trouble is not None and "malformed" in trouble["error"], trouble
    finally:
        s.close()


async def test_a_user_removed_while_their_mail_arrives_is_no_store_trouble(tmp_path: Path) -> None:
    # The admin removes anna while her DATA is on its way: her mail is refused (it failed its
    # foreign key before: 451, and she sent again for days) and the store is fine; counted as damage
    # it was 30 s of /healthz 503 and `smsgw status` saying new mail was refused, while it was taken.
    import dataclasses

    store = Store.open(tmp_path / "db.sqlite")
    account = store.accounts.add_account("acme").id
    user = store.accounts.add_user("anna@acme.example", "acme").id
    store.accounts.remove_user("anna@acme.example")
    anna = dataclasses.replace(acceptance(["+48601123456"]), account_id=account, user_id=user)
    result = await accept(store, anna)
    assert result.email_id is None and result.refused == replies.SENDER_GONE
    assert store.db.trouble() is None
    store.close()
