"""`smsgw restore` and what happened after the backup was taken that the sender is owed: a bounce not
sent yet, mail accepted and not yet sent as SMS, and a restore cut off before its swap.

Restored without them, an SMS that failed after the backup ended `failed` with its bounce gone (the
sender was never told); mail that got `250` after the backup and still waited was dropped without a
word; and a restore re-run after one cut off between setting the old database aside and the swap
found no database to carry from, so every SMS the backup showed queued went to the phones again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from gateway.store.db import Store
from tests.conftest import config_text, free_port, smtp_sink
from tests.test_account_show import CLI
from tests.test_fresh_schema import migrated_up_to
from tests.test_process import smsgw, start_daemon
from tests.test_restore_carry import part_states, rows, send_one, simulated, stop, waiting
from tests.test_simulator_pending_reports import DELAY, until, with_simulator


async def test_the_bounce_of_an_sms_that_failed_after_the_backup_is_sent_after_the_restore(
    tmp_path: Path,
) -> None:
    smpp, smtp_port, relay = free_port(), free_port(), free_port()
    config = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=smpp, smtp_port=smtp_port, relay_port=relay)
    config.write_text(with_simulator(text, tmp_path, smpp))  # nothing on the relay port: the bounce waits
    db = tmp_path / "state" / "smsgw.db"
    backup = tmp_path / "backup.db"
    proc = await start_daemon(config, smtp_port)
    try:
        await send_one(smtp_port, "601777013", "Fails after the backup")  # ending 13: reported failed
        await until(lambda: part_states(db) == ["submitted"], DELAY - 1, f"submitted: {part_states(db)}")
        assert (await asyncio.to_thread(smsgw, config, "backup", str(backup))).returncode == 0
        await until(lambda: part_states(db) == ["failed"], DELAY + 20, f"failed: {part_states(db)}")
        await until(lambda: rows(db, "SELECT state FROM outbox") != [], 20, "the bounce queued")
    finally:
        await stop(proc)
    assert rows(backup, "SELECT COUNT(*) FROM outbox") == [(0,)]
    res = await asyncio.to_thread(smsgw, config, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "1 delivery reports, 1 bounces and notices still to send" in res.stdout, res.stdout
    assert rows(db, "SELECT state FROM messages") == [("failed",)]
    assert rows(db, "SELECT kind, state, message_ref FROM outbox") == [("dsn", "queued", 1)]
    async with smtp_sink(relay) as sink:
        proc = await start_daemon(config, smtp_port)
        try:
            await sink.wait(1, 60)
        finally:
            await stop(proc)
    (sender, _rcpts, content) = sink.messages[0]
    assert sender in ("", "<>")  # a bounce, of the null sender
    assert b"Fails after the backup" in content or b"601777013" in content


async def test_mail_accepted_after_the_backup_and_not_yet_sent_goes_out_after_the_restore(
    tmp_path: Path,
) -> None:
    smpp, smtp_port = free_port(), free_port()
    config = tmp_path / "config.toml"
    base = config_text(tmp_path, smsc_port=smpp, smtp_port=smtp_port)
    config.write_text(base)  # no SMSC: every SMS waits in the queue
    db = tmp_path / "state" / "smsgw.db"
    backup = tmp_path / "backup.db"
    proc = await start_daemon(config, smtp_port)
    try:
        await send_one(smtp_port, "601000001", "In the backup")
        assert (await asyncio.to_thread(smsgw, config, "backup", str(backup))).returncode == 0
        await send_one(smtp_port, "601000002", "After the backup, one")
        await send_one(smtp_port, "601000003", "After the backup, two")
    finally:
        await stop(proc)
    (ours,) = rows(backup, "SELECT MAX(id) FROM emails")[0]
    later = [int(r[0]) for r in rows(db, f"SELECT id FROM emails WHERE id > {ours} ORDER BY id")]
    assert len(later) == 2

    res = await asyncio.to_thread(smsgw, config, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    said = f"2 mails accepted after the backup (ids {later[0]}-{later[1]})"
    assert said in res.stdout, res.stdout
    assert said in str(rows(db, "SELECT detail FROM audit WHERE action = 'database.restore'"))
    assert "ids continue after" not in res.stdout  # the newest mail is itself carried
    shown = await asyncio.to_thread(smsgw, config, "queue", "show", "--mail", str(later[1]))
    assert shown.returncode == 0, shown.stderr
    assert "not sent as SMS" not in shown.stdout, shown.stdout

    config.write_text(with_simulator(base, tmp_path, smpp))
    proc = await start_daemon(config, smtp_port)
    try:
        await until(lambda: waiting(db) == 0, 30, f"sent: {part_states(db)}")
        await send_one(smtp_port, "601000004", "After the restore")
        await until(lambda: len(part_states(db)) == 4 and waiting(db) == 0, 30, f"{part_states(db)}")
    finally:
        await stop(proc)
    assert simulated(tmp_path) == [f"+4860100000{n}" for n in (1, 2, 3, 4)]
    (after,) = rows(db, "SELECT id FROM emails WHERE text LIKE '%After the restore%'")
    assert after[0] == later[1] + 1  # no id handed out twice


def acme_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[CLI, Path]:
    """The CLI on a fresh state with the account ACME, no daemon running: the CLI and its database."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    cli = CLI(path, capsys)
    cli.ok("account", "add", "ACME")
    return cli, tmp_path / "state" / "smsgw.db"


def acme_backed_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[CLI, Path, Path]:
    """`acme_cli`'s state, and its backup taken: the CLI, the database and the backup."""
    cli, db = acme_cli(tmp_path, capsys)
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    return cli, db, backup


def upgraded_since_backup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[CLI, Path, Path]:
    """A backup taken at schema version 48 with the account ACME, and its copy upgraded since as the
    database, no daemon running: the CLI, the backup and the database."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    backup, db = tmp_path / "backup.db", tmp_path / "state" / "smsgw.db"
    with closing(migrated_up_to(48)) as old, closing(sqlite3.connect(backup)) as conn:
        old.execute("INSERT INTO accounts (id, name, created_at) VALUES (1, 'ACME', 1)")
        old.backup(conn)
    shutil.copy(backup, db)
    Store.open(db).close()
    return CLI(path, capsys), backup, db


def test_a_restore_cut_off_before_its_swap_carries_from_the_database_it_set_aside_when_run_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli, db = acme_cli(tmp_path, capsys)
    with closing(sqlite3.connect(db)) as conn, conn:  # an SMS waiting in the queue, as the daemon queues one
        conn.execute(
            "INSERT INTO emails (id, mail_from, text, received_at) VALUES (1, 'a@b.example', 'x', 1)"
        )
        conn.execute(
            "INSERT INTO messages (id, email_id, recipient, source, text, coding, parts_total, state,"
            " created_at, expires_at) VALUES (1, 1, '+48601000001', 'GW', 'x', 0, 1, 'queued', 1, 9e9)"
        )
        conn.execute(
            "INSERT INTO parts (id, message_id, seq, state, next_attempt_at, expires_at, destination,"
            " source, data_coding, payload, udh, text) VALUES (1, 1, 1, 'queued', 1, 9e9, '+48601000001',"
            " 'GW', 0, x'78', x'', 'x')"
        )
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    with closing(sqlite3.connect(db)) as conn, conn:  # and taken by the SMSC after the backup
        conn.execute(
            "UPDATE parts SET state = 'submitted', attempts = 1, link = 'smsc', smsc_id = 'A1',"
            " submitted_at = 2"
        )
        conn.execute("UPDATE messages SET state = 'submitted'")

    real = os.replace

    def cut_off(src: object, dst: object) -> None:
        if str(dst) == str(db):
            raise KeyboardInterrupt  # the restore ends here: the old database set aside, no copy in place
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", cut_off)
    code, _out, _err = cli("restore", str(backup))
    monkeypatch.setattr(os, "replace", real)
    assert code != 0
    assert not db.exists()
    (aside,) = [p for p in db.parent.glob("smsgw.db.before-restore-*") if not p.name.endswith("-wal")]

    out = cli.ok("restore", str(backup))
    said = f"smsgw.db was missing (a restore cut off before its swap), {aside.name} read:"
    said += " carried from the replaced database: 1 SMS already sent"
    assert any(line.startswith(said) for line in out), out
    assert rows(db, "SELECT state, link, smsc_id FROM parts") == [("submitted", "smsc", "A1")]
    assert not any(p.name.endswith(".restore-aside") for p in db.parent.iterdir())


def test_mail_after_the_backup_of_an_account_the_backup_lacks_is_listed_not_carried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, db, backup = acme_backed_up(tmp_path, capsys)
    cli.ok("account", "add", "LATER")  # added after the backup: the restored copy has no such account
    with closing(sqlite3.connect(db)) as conn, conn:  # its mail, its SMS still queued
        (later,) = conn.execute("SELECT id FROM accounts WHERE name = 'LATER'").fetchone()
        conn.execute(
            "INSERT INTO emails (id, account_id, mail_from, text, received_at)"
            " VALUES (7, ?, 'a@b.example', 'x', 1)",
            (later,),
        )
        conn.execute(
            "INSERT INTO messages (id, email_id, account_id, recipient, source, text, coding, parts_total,"
            " state, created_at, expires_at)"
            " VALUES (1, 7, ?, '+48601000001', 'GW', 'x', 0, 1, 'queued', 1, 9e9)",
            (later,),
        )
        conn.execute(
            "INSERT INTO parts (id, message_id, seq, state, next_attempt_at, expires_at, destination,"
            " source, data_coding, payload, udh, text) VALUES (1, 1, 1, 'queued', 1, 9e9, '+48601000001',"
            " 'GW', 0, x'78', x'', 'x')"
        )
    out = cli.ok("restore", str(backup))
    said = "; 1 mails accepted after the backup could not be carried (ids 7): their SMS not sent"
    said += " do not go, their senders got 250; ids continue after 7"
    assert any(said in line for line in out), out
    assert rows(db, "SELECT COUNT(*) FROM messages") == [(0,)]
