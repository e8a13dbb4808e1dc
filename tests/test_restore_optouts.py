"""`smsgw restore` and the opt-outs made or undone after the backup was taken.

A phone that sent STOP after the backup is owed no more SMS: restored as the backup had the list, the
next SMS to it went, and `optout list` did not show it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import DOMAIN, config_text, free_port, mail, send_blocking
from tests.test_process import smsgw, start_daemon
from tests.test_restore_after_backup import acme_backed_up
from tests.test_restore_carry import rows, stop


async def test_a_stop_sent_after_the_backup_is_honoured_after_the_restore(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port))
    db = tmp_path / "state" / "smsgw.db"
    backup = tmp_path / "backup.db"
    proc = await start_daemon(config, smtp_port)
    try:
        assert (
            res := await asyncio.to_thread(smsgw, config, "optout", "add", "+48601000002")
        ).returncode == 0
        assert (await asyncio.to_thread(smsgw, config, "backup", str(backup))).returncode == 0
        # Since: the admin took +48601000002 off the list, and the phone +48601000001 sent STOP.
        res = await asyncio.to_thread(smsgw, config, "optout", "remove", "+48601000002")
        assert res.returncode == 0, res.stderr
    finally:
        await stop(proc)
    with closing(sqlite3.connect(db)) as conn, conn:  # as the daemon records a phone's STOP
        conn.execute(
            "INSERT INTO optouts (number, word, source, created_at) VALUES (?, 'STOP', 'mo', 9)",
            ("+48601000001",),
        )
    res = await asyncio.to_thread(smsgw, config, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "2 opt-outs added or removed since" in res.stdout, res.stdout
    assert rows(db, "SELECT number, source FROM optouts") == [("+48601000001", "mo")]
    proc = await start_daemon(config, smtp_port)
    try:
        refused = f"601000001@{DOMAIN}"
        result = await asyncio.to_thread(send_blocking, smtp_port, mail(refused, "Still there?"), [refused])
        allowed = f"601000002@{DOMAIN}"
        again = await asyncio.to_thread(
            send_blocking, smtp_port, mail(allowed, "Back on the list"), [allowed]
        )
    finally:
        await stop(proc)
    # Restored as the backup had the list, the phone that asked for no more SMS got this one.
    assert result.refused or result.error, result
    assert not again.refused and again.error is None, again
    assert rows(db, "SELECT recipient FROM messages") == [("+48601000002",)]


def test_an_accounts_own_opt_out_made_after_the_backup_is_carried_and_one_of_an_account_added_since_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, db, backup = acme_backed_up(tmp_path, capsys)
    cli.ok("account", "add", "LATER")
    with closing(sqlite3.connect(db)) as conn, conn:  # each company's admin listed the number on its page
        conn.execute(
            "INSERT INTO account_optouts (account_id, number, created_at)"
            " SELECT id, '+48601000001', 9 FROM accounts ORDER BY id"
        )
    out = cli.ok("restore", str(backup))
    assert any("1 opt-outs added or removed since" in line for line in out), out
    assert rows(
        db, "SELECT a.name, o.number FROM account_optouts o JOIN accounts a ON a.id = o.account_id"
    ) == [("ACME", "+48601000001")]
