"""`smsgw restore` and a phone's erasure (`smsgw phone forget`) made after the backup was taken.

The backup holds the texts the erasure erased: restored as it is, the phone's SMS, their parts, its
answers and conversations came back, and only the answers' rows (carried as changed) stayed erased.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from gateway.privacy.naming import ERASED
from tests.test_restore_after_backup import acme_cli, upgraded_since_backup
from tests.test_restore_carry import rows

PHONE = "+48601000001"


def sms(conn: sqlite3.Connection, id_: int, text: str) -> None:
    """A mail of one SMS to the phone, delivered."""
    conn.execute(
        "INSERT INTO emails (id, mail_from, text, received_at) VALUES (?, 'anna@acme.example', ?, ?)",
        (id_, text, id_),
    )
    conn.execute(
        "INSERT INTO messages (id, email_id, recipient, source, text, coding, parts_total, state,"
        " created_at, expires_at) VALUES (?, ?, ?, 'GW', ?, 0, 1, 'delivered', ?, 9e9)",
        (id_, id_, PHONE, text, id_),
    )
    conn.execute(
        "INSERT INTO parts (id, message_id, seq, state, next_attempt_at, expires_at, destination, source,"
        " data_coding, payload, udh, text) VALUES (?, ?, 1, 'delivered', 1, 9e9, ?, 'GW', 0, ?, x'', ?)",
        (id_, id_, PHONE, text.encode(), text),
    )


def test_a_phone_erased_after_the_backup_stays_erased_after_the_restore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, db = acme_cli(tmp_path, capsys)
    with closing(sqlite3.connect(db)) as conn, conn:  # an SMS to the phone, its answer, their conversation
        sms(conn, 1, "Your results are ready")
        conn.execute(
            "INSERT INTO mo (id, link, source, destination, text, state, received_at)"
            " VALUES (1, 'main', ?, '+48100200300', 'Thanks, I will come', 'mailed', 5)",
            (PHONE,),
        )
        conn.execute(
            "INSERT INTO conversations (id, phone, number, user_email, account_id, domain, text, started_at,"
            " last_mt_at) VALUES (1, ?, '+48100200300', 'anna@acme.example',"
            " (SELECT id FROM accounts WHERE name = 'ACME'), 'sms.example', 'Your results are ready', 1, 1)",
            (PHONE,),
        )
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    cli.ok("phone", "forget", PHONE, "--yes")
    with closing(sqlite3.connect(db)) as conn, conn:  # the phone written to again after its erasure
        sms(conn, 2, "A new appointment")
    out = cli.ok("restore", str(backup))
    assert any("1 phone erasures made since, made again" in line for line in out), out
    # Restored as the backup had them, the texts the erasure erased were back.
    assert rows(db, "SELECT id, text FROM messages ORDER BY id") == [(1, ERASED), (2, "A new appointment")]
    assert rows(db, "SELECT id, text, payload FROM parts ORDER BY id") == [
        (1, ERASED, b""),
        (2, "A new appointment", b"A new appointment"),
    ]
    assert rows(db, "SELECT text FROM emails WHERE id = 1") == [(ERASED,)]
    assert rows(db, "SELECT text FROM mo") == [(ERASED,)]
    assert rows(db, "SELECT COUNT(*) FROM conversations") == [(0,)]
    # The erasure's proof stays in the audit trail, before the restore's own row.
    assert rows(db, "SELECT action FROM audit ORDER BY id")[-2:] == [("phone.forget",), ("database.restore",)]
    out = cli.ok("restore", str(backup))  # again over the restored: still erased, the proof once
    assert rows(db, "SELECT text FROM messages WHERE id = 1") == [(ERASED,)]
    assert rows(db, "SELECT COUNT(*) FROM audit WHERE action = 'phone.forget'") == [(1,)]


def test_an_erasure_that_cannot_be_made_again_on_a_backup_from_before_an_upgrade_is_said_with_its_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, backup, db = upgraded_since_backup(tmp_path, capsys)  # and the phone erased then
    cli.ok("phone", "forget", PHONE, "--yes")
    out = cli.ok("restore", str(backup))
    said = "1 phone erasures made since not made again (a backup from before an upgrade): once the daemon"
    assert any(said in line and f"`smsgw phone forget --yes {PHONE}`" in line for line in out), out
    # The rest is carried all the same: the erasure's row among it.
    assert rows(db, "SELECT COUNT(*) FROM audit WHERE action = 'phone.forget'") == [(1,)]
