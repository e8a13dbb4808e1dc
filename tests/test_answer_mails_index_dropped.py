"""Migration 77 drops the index of answer mails by address (migration 75): its one reader, the loop
guard's lookup of a phone's latest answer mail to a sender, starts from the phone's MOs since 76, and
each answer mail queued still wrote an entry into it (some 4 kB of WAL a mail committed alone). A
database at schema 76 (0.2.41) with answer mails in it opens at 77 without the index, and the loop
guard still finds the phone's answer mail, address in any case, through the phone's MOs. Real SQLite
files.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.conversations import loopguard
from gateway.store.db import Db
from tests.test_store import undo_migration_77

NOW = 1_800_000_000.0
PHONE = "+48601000001"
HELPDESK = "helpdesk@acme.example"


def test_an_upgrade_from_schema_76_drops_the_index_and_the_loop_guard_still_finds_answers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "smsgw.db"
    Db.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        undo_migration_77(conn)
        conn.execute("UPDATE schema_version SET version = 76")
        conn.execute("BEGIN")
        for i, (source, at) in enumerate(((PHONE, NOW - 300), ("+48601000002", NOW - 60))):
            mo = conn.execute(
                "INSERT INTO mo (link, source, destination, text, state, received_at)"
                " VALUES ('l', ?, '7355', ?, 'done', ?)",
                (source, f"answer {i}", at),
            ).lastrowid
            conn.execute(
                "INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at, created_at,"
                " mo_ref) VALUES ('reply', 'gw@gw.example', ?, x'00', 'sent', ?, ?, ?)",
                ("HelpDesk@acme.example", at, at, mo),
            )
        conn.execute("COMMIT")
    finally:
        conn.close()
    db = Db.open(path)
    try:
        assert db.conn.execute("SELECT version FROM schema_version").fetchone()[0] >= 77
        names = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "outbox_replies" not in names
        assert {"mo_phone_times", "outbox_mo_ref"} <= names
        assert loopguard._answer_between(db.conn, PHONE, HELPDESK, None, NOW) == "answer 0"
        assert loopguard._answer_between(db.conn, PHONE, HELPDESK, NOW - 200, NOW) is None
    finally:
        db.close()
