"""`smsgw restore` and the mail accepted after the backup whose SMS had all gone by the restore.

Such mail was dropped: its SMS were gone from `queue list` and the bills, from the count of identical
SMS to a phone in a day (a fourth went after a restore) and from the Message-IDs a client's retry is
known by (the retry went again). The real daemon with its simulator, the real CLI, a real backup.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import config_text, free_port, mail, send_blocking
from tests.test_policy import code, error_text, to
from tests.test_process import smsgw, start_daemon
from tests.test_restore_after_backup import acme_cli
from tests.test_restore_carry import part_states, rows, simulated, stop, waiting
from tests.test_simulator_pending_reports import until, with_simulator


def _setup(tmp_path: Path) -> tuple[Path, int, Path, Path]:
    """A config with the simulator on: (config, SMTP port, database, backup path)."""
    smpp, smtp_port = free_port(), free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        with_simulator(config_text(tmp_path, smsc_port=smpp, smtp_port=smtp_port), tmp_path, smpp)
    )
    return config, smtp_port, tmp_path / "state" / "smsgw.db", tmp_path / "backup.db"


async def _sent_since_the_backup(
    config: Path, smtp_port: int, db: Path, backup: Path, mails: list[object]
) -> None:
    """The backup taken, then `mails` accepted and their SMS all gone to the SMSC, the daemon stopped,
    and the backup restored over the database."""
    proc = await start_daemon(config, smtp_port)
    try:
        assert (await asyncio.to_thread(smsgw, config, "backup", str(backup))).returncode == 0
        for msg in mails:
            result = await asyncio.to_thread(send_blocking, smtp_port, msg, [str(msg["To"])])  # type: ignore[index]
            assert result.error is None and not result.refused, result
        await until(lambda: len(part_states(db)) == len(mails) and waiting(db) == 0, 30, f"{part_states(db)}")
    finally:
        await stop(proc)
    res = await asyncio.to_thread(smsgw, config, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert f"{len(mails)} mails accepted after the backup" in res.stdout, res.stdout


async def test_a_fourth_identical_sms_the_day_of_a_restore_is_refused(tmp_path: Path) -> None:
    config, smtp_port, db, backup = _setup(tmp_path)
    same = [mail(to("601999111"), "Identical text", Message_ID=f"<same-{i}@acme.example>") for i in range(4)]
    await _sent_since_the_backup(config, smtp_port, db, backup, same[:3])
    proc = await start_daemon(config, smtp_port)
    try:
        fourth = await asyncio.to_thread(send_blocking, smtp_port, same[3], [to("601999111")])
    finally:
        await stop(proc)
    assert code(fourth) == 550 and "identical" in error_text(fourth), fourth
    assert simulated(tmp_path) == ["+48601999111"] * 3


async def test_a_retry_of_a_mail_sent_before_a_restore_is_not_sent_again(tmp_path: Path) -> None:
    config, smtp_port, db, backup = _setup(tmp_path)
    msg = mail(to("601777333"), "Retry of one mail", Message_ID="<retry-1@client.example>")
    await _sent_since_the_backup(config, smtp_port, db, backup, [msg])
    proc = await start_daemon(config, smtp_port)
    try:
        again = await asyncio.to_thread(send_blocking, smtp_port, msg, [to("601777333")])
        assert again.error is None and not again.refused, again  # the client is told it went
        await asyncio.sleep(1)  # a retry sent again would be with the simulator by now
    finally:
        await stop(proc)
    assert simulated(tmp_path) == ["+48601777333"]
    assert rows(db, "SELECT COUNT(*) FROM messages") == [(1,)]


async def test_the_billing_run_after_a_restore_counts_the_sms_sent_since_the_backup(tmp_path: Path) -> None:
    config, smtp_port, db, backup = _setup(tmp_path)
    mails = [mail(to(f"60155500{i}"), f"Billed {i}") for i in range(2)]
    await _sent_since_the_backup(config, smtp_port, db, backup, mails)
    assert simulated(tmp_path) == ["+48601555000", "+48601555001"]
    month = time.strftime("%Y-%m", time.gmtime())
    billed = await asyncio.to_thread(smsgw, config, "billing", "run", "--month", month)
    assert billed.returncode == 0, billed.stderr
    assert ": 2 SMS, 2 part(s)" in billed.stdout, billed.stdout
    listed = await asyncio.to_thread(smsgw, config, "queue", "list")
    assert "+48601555001" in listed.stdout, listed.stdout


def test_one_mail_after_the_backup_that_cannot_be_carried_leaves_the_others_carried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, db = acme_cli(tmp_path, capsys)
    with closing(sqlite3.connect(db)) as conn, conn:
        _sms(conn, 1, 1, "delivered")
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    with closing(sqlite3.connect(db)) as conn, conn:  # SMS 1 purged since, its id given again to mail 2's
        conn.execute("DELETE FROM parts")
        conn.execute("DELETE FROM messages")
        _sms(conn, 2, 1, "delivered")
        _sms(conn, 3, 2, "delivered")
        _sms(conn, 4, 3, "queued")
    out = cli.ok("restore", str(backup))
    said = "2 mails accepted after the backup (ids 3-4); 1 mails accepted after the backup could not be"
    said += " carried (ids 2)"
    assert any(said in line for line in out), out
    assert rows(db, "SELECT id, email_id, state FROM messages ORDER BY id") == [
        (1, 1, "delivered"),
        (2, 3, "delivered"),
        (3, 4, "queued"),
    ]
    # The backup's receipt of SMS 1, and mail 3's; not mail 2's, left.
    assert rows(db, "SELECT part_id, smsc_id FROM dlrs ORDER BY part_id") == [(1, "S1"), (2, "S2")]


def _sms(conn: sqlite3.Connection, mail: int, sms: int, state: str) -> None:
    """Mail `mail` with one SMS, id `sms` for it and its part, in `state`; a receipt if delivered."""
    conn.execute(
        "INSERT OR IGNORE INTO emails (id, mail_from, text, received_at) VALUES (?, 'a@b.example', 'x', ?)",
        (mail, mail),
    )
    conn.execute(
        "INSERT INTO messages (id, email_id, recipient, source, text, coding, parts_total, state,"
        " created_at, expires_at) VALUES (?, ?, '+48601000001', 'GW', 'x', 0, 1, ?, 1, 9e9)",
        (sms, mail, state),
    )
    conn.execute(
        "INSERT INTO parts (id, message_id, seq, state, next_attempt_at, expires_at, destination,"
        " source, data_coding, payload, udh, text, link, smsc_id) VALUES (?, ?, 1, ?, 1, 9e9,"
        " '+48601000001', 'GW', 0, x'78', x'', 'x', 'smsc', ?)",
        (sms, sms, state, f"S{sms}"),
    )
    if state == "delivered":
        conn.execute(
            "INSERT INTO dlrs (link, smsc_id, status, part_id, received_at)"
            " VALUES ('smsc', ?, 'DELIVRD', ?, 1)",
            (f"S{sms}", sms),
        )
