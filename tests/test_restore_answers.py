"""`smsgw restore` and the phones' answers (MOs) received after the backup was taken.

Restored without them, an answer received after the backup and not yet mailed (the relay was down)
was lost: its phone's SMSC had its acknowledgement, and never delivered it again. And an answer the
backup shows kept (past the hourly limit per phone), mailed since, was mailed again after the restore.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, config_text, free_port, mail, send_blocking, smtp_sink
from tests.test_process import smsgw, start_daemon
from tests.test_restore_after_backup import acme_backed_up, acme_cli, upgraded_since_backup
from tests.test_restore_carry import rows, send_one, stop
from tests.test_simulator_pending_reports import until


def simulator_at(tmp_path: Path, smpp: int, control: int) -> str:
    return (
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {free_port()}\n"
        f'control_port = {control}\nlog = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0\n'
    )


async def test_an_answer_received_after_the_backup_and_not_yet_mailed_is_mailed_once_after_the_restore(
    tmp_path: Path,
) -> None:
    smpp, smtp_port, relay, control = free_port(), free_port(), free_port(), free_port()
    config = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=smpp, smtp_port=smtp_port, relay_port=relay)
    config.write_text(text.replace("[simulator]\nenabled = false\n", simulator_at(tmp_path, smpp, control)))
    db = tmp_path / "state" / "smsgw.db"
    backup = tmp_path / "backup.db"
    proc = await start_daemon(config, smtp_port)  # nothing on the relay port: the answer's mail waits
    try:
        await send_one(smtp_port, "601000001", "Will you come?")
        await until(lambda: rows(db, "SELECT state FROM parts") == [("delivered",)], 20, "delivered")
        assert (await asyncio.to_thread(smsgw, config, "backup", str(backup))).returncode == 0
        said = await send_command(
            "127.0.0.1", control, {"op": "mo", "reply_to_last": True, "text": "Yes, at 10"}
        )
        assert said["ok"], said
        await until(lambda: rows(db, "SELECT kind, state FROM outbox") == [("reply", "queued")], 20, "queued")
    finally:
        await stop(proc)
    assert rows(backup, "SELECT COUNT(*) FROM mo") == [(0,)]

    res = await asyncio.to_thread(smsgw, config, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "1 answers received since" in res.stdout, res.stdout
    assert rows(db, "SELECT state, text FROM mo") == [("mailed", "Yes, at 10")]
    async with smtp_sink(relay) as sink:
        proc = await start_daemon(config, smtp_port)
        try:
            await sink.wait(1, 60)
            await until(lambda: rows(db, "SELECT state FROM outbox") == [("sent",)], 20, "sent")
        finally:
            await stop(proc)
    assert len(sink.messages) == 1
    assert b"Yes, at 10" in sink.messages[0][2]


def mo_row(conn: sqlite3.Connection, mo_id: int, state: str, text: str) -> None:
    conn.execute(
        "INSERT INTO mo (id, link, source, destination, text, state, received_at)"
        " VALUES (?, 'main', '+48601000001', '+48100200300', ?, ?, 5)",
        (mo_id, text, state),
    )


def service(conn: sqlite3.Connection, created_at: float, verified_at: float | None = 1) -> None:
    """ACME's premium service KP1 (its address confirmed at `verified_at`, None: not yet)."""
    conn.execute(
        "INSERT INTO premium_services (id, password, account_id, email, verified_at, created_at)"
        " VALUES (1, 'KP1', (SELECT id FROM accounts WHERE name = 'ACME'), 'votes@acme.example', ?, ?)",
        (verified_at, created_at),
    )


def vote(conn: sqlite3.Connection, state: str) -> None:
    """A phone's paid vote for KP1 (MO 1) and its money record, in `state`."""
    mo_row(conn, 1, "premium", "KP1 yes")
    conn.execute(
        "INSERT INTO premium_mo (id, mo_id, number, phone, service_id, account_id, password, parts,"
        " price, commission, text, state, received_at) VALUES (1, 1, '7100', '+48601000001', 1,"
        " (SELECT id FROM accounts WHERE name = 'ACME'), 'KP1', 1, 100, 10, 'yes', ?, 5)",
        (state,),
    )


def test_an_answer_kept_in_the_backup_and_mailed_since_is_not_mailed_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, db = acme_cli(tmp_path, capsys)
    with closing(sqlite3.connect(db)) as conn, conn:  # past the hourly limit per phone: kept
        mo_row(conn, 1, "throttled", "Kept")
        conn.execute("INSERT INTO kept_phones (source, mails, at) VALUES ('+48601000001', 0, 5)")
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    with closing(sqlite3.connect(db)) as conn, conn:  # mailed after the backup, as `kept.mail_due` does
        conn.execute("UPDATE mo SET state = 'mailed', note = 'kept, mailed an hour on' WHERE id = 1")
        conn.execute("UPDATE kept_phones SET mails = 1, at = 3605")
        conn.execute(
            "INSERT INTO outbox (kind, mail_from, rcpt, content, state, attempts, next_attempt_at,"
            " created_at, sent_at, mo_ref)"
            " VALUES ('reply-kept', '', 'anna@acme.example', x'00', 'sent', 1, 3605, 3605, 3606, 1)"
        )
    out = cli.ok("restore", str(backup))
    assert any("1 answers handled since" in line for line in out), out
    # Left `throttled`, the daemon's next run mailed it to the user again.
    assert rows(db, "SELECT state, note FROM mo") == [("mailed", "kept, mailed an hour on")]
    assert rows(db, "SELECT mails, at FROM kept_phones") == [(1, 3605.0)]
    assert rows(db, "SELECT kind, state, mo_ref FROM outbox") == [("reply-kept", "sent", 1)]


def test_a_premium_sms_received_after_the_backup_is_carried_once_with_its_money_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, db = acme_cli(tmp_path, capsys)
    with closing(sqlite3.connect(db)) as conn, conn:
        service(conn, 1)
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    with closing(sqlite3.connect(db)) as conn, conn:  # a vote after the backup, its mail not sent yet
        vote(conn, "mailed")
        conn.execute(
            "INSERT INTO outbox (kind, mail_from, rcpt, content, next_attempt_at, created_at, mo_ref)"
            " VALUES ('premium', '', 'votes@acme.example', x'00', 5, 5, 1)"
        )
    out = cli.ok("restore", str(backup))
    assert any("1 answers received since, 1 premium SMS" in line for line in out), out
    # Restored without it, the phone's paid vote was never billed to the client, nor mailed.
    assert rows(db, "SELECT mo_id, service_id, price, state FROM premium_mo") == [(1, 1, 100, "mailed")]
    assert rows(db, "SELECT kind, state, mo_ref FROM outbox") == [("premium", "queued", 1)]
    out = cli.ok("restore", str(backup))  # restored again over the restored: nothing twice
    assert rows(db, "SELECT COUNT(*) FROM premium_mo") == [(1,)]
    assert rows(db, "SELECT COUNT(*) FROM outbox") == [(1,)]


async def test_the_sms_counted_against_a_limit_since_the_backup_still_count_after_the_restore(
    tmp_path: Path,
) -> None:
    smtp_port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port))  # no SMSC: they wait
    db = tmp_path / "state" / "smsgw.db"
    backup = tmp_path / "backup.db"
    proc = await start_daemon(config, smtp_port)
    try:
        limited = await asyncio.to_thread(smsgw, config, "account", "set", "acme", "--daily-limit", "2")
        assert limited.returncode == 0, limited.stderr
        await send_one(smtp_port, "601000001", "The first of the day")
        assert (await asyncio.to_thread(smsgw, config, "backup", str(backup))).returncode == 0
        await send_one(smtp_port, "601000002", "The second, after the backup")
    finally:
        await stop(proc)
    res = await asyncio.to_thread(smsgw, config, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "usage counters" in res.stdout, res.stdout
    proc = await start_daemon(config, smtp_port)
    try:
        # The day's two used up: counted 1 as the backup had it, a third went over the limit.
        rcpt = f"601000003@{DOMAIN}"
        result = await asyncio.to_thread(send_blocking, smtp_port, mail(rcpt, "A third"), [rcpt])
    finally:
        await stop(proc)
    refusal = str(result.error or result.refused)
    assert "Daily limit" in refusal and "used 2" in refusal, refusal
    assert rows(db, "SELECT COUNT(*) FROM messages") == [(2,)]


async def test_an_sms_id_given_before_the_restore_is_not_given_again(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port))  # no SMSC: they wait
    db = tmp_path / "state" / "smsgw.db"
    backup = tmp_path / "backup.db"
    proc = await start_daemon(config, smtp_port)
    try:
        await send_one(smtp_port, "601000001", "In the backup")
        assert (await asyncio.to_thread(smsgw, config, "backup", str(backup))).returncode == 0
        await send_one(smtp_port, "601000002", "Accepted after the backup, then cancelled")
        cancel = await asyncio.to_thread(smsgw, config, "queue", "cancel", "2")
        assert cancel.returncode == 0, cancel.stderr
        # Its mail had no SMS left to send: carried all the same, its SMS and bounce under their ids.
    finally:
        await stop(proc)
    assert rows(db, "SELECT id, kind, message_ref FROM outbox") == [(1, "dsn", 2)]  # its bounce
    res = await asyncio.to_thread(smsgw, config, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "1 mails accepted after the backup (ids 2)" in res.stdout, res.stdout
    assert "SMS ids after" not in res.stdout  # no id to keep past: the SMS is there
    proc = await start_daemon(config, smtp_port)
    try:
        await send_one(smtp_port, "601000003", "After the restore")
        await send_one(smtp_port, "601000004", "And the next")
        cancel = await asyncio.to_thread(smsgw, config, "queue", "cancel", "3")
        assert cancel.returncode == 0, cancel.stderr
    finally:
        await stop(proc)
    # `queue cancel 2` typed again would have cancelled another SMS: the id an admin saw named it.
    assert rows(db, "SELECT id, recipient, state FROM messages ORDER BY id") == [
        (1, "+48601000001", "queued"),
        (2, "+48601000002", "cancelled"),
        (3, "+48601000003", "cancelled"),
        (4, "+48601000004", "queued"),
    ]
    # Not 1 for SMS 3's bounce: that is SMS 2's, still to send.
    assert rows(db, "SELECT id, kind, message_ref FROM outbox") == [(1, "dsn", 2), (2, "dsn", 3)]
    assert rows(db, "SELECT COUNT(*) FROM billing_state WHERE key LIKE 'ids_above/%'") == [(0,)]


def test_a_vote_waiting_in_the_backup_for_its_service_and_mailed_since_is_not_mailed_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, db = acme_cli(tmp_path, capsys)
    with closing(sqlite3.connect(db)) as conn, conn:  # its service's address not confirmed yet
        service(conn, 1, verified_at=None)
        vote(conn, "awaiting")
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    with closing(sqlite3.connect(db)) as conn, conn:  # confirmed after the backup: the vote mailed then
        conn.execute("UPDATE premium_services SET verified_at = 7")
        conn.execute("UPDATE premium_mo SET state = 'mailed', forwarded_at = 7")
        conn.execute(
            "INSERT INTO outbox (kind, mail_from, rcpt, content, state, attempts, next_attempt_at,"
            " created_at, sent_at, mo_ref)"
            " VALUES ('premium', '', 'votes@acme.example', x'00', 'sent', 1, 7, 7, 8, 1)"
        )
    cli.ok("restore", str(backup))
    # Left `awaiting`, it was mailed again when the address was confirmed again; its mail is the record.
    assert rows(db, "SELECT state, forwarded_at FROM premium_mo") == [("mailed", 7.0)]
    assert rows(db, "SELECT kind, state, mo_ref FROM outbox") == [("premium", "sent", 1)]


def test_an_answer_after_a_backup_from_before_an_upgrade_is_carried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A backup at schema version 48 has no kept_phones (49): carrying the phones' record into it failed,
    # and with it the whole carry (every SMS sent since the backup went again).
    cli, backup, db = upgraded_since_backup(tmp_path, capsys)  # and an answer received then, not mailed yet
    with closing(sqlite3.connect(db)) as conn, conn:
        mo_row(conn, 1, "mailed", "Received after the upgrade")
        conn.execute(
            "INSERT INTO outbox (kind, mail_from, rcpt, content, next_attempt_at, created_at, mo_ref)"
            " VALUES ('reply', '', 'anna@acme.example', x'00', 5, 5, 1)"
        )
    out = cli.ok("restore", str(backup))
    assert any("1 answers received since" in line for line in out), out
    assert rows(db, "SELECT state, text FROM mo") == [("mailed", "Received after the upgrade")]
    assert rows(db, "SELECT kind, state, mo_ref FROM outbox") == [("reply", "queued", 1)]


def test_a_conversation_moved_on_since_the_backup_after_a_clock_step_routes_as_it_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, db = acme_cli(tmp_path, capsys)
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "INSERT INTO conversations (id, phone, number, user_email, account_id, domain, text, started_at,"
            " last_mt_at) VALUES (1, '+48601000001', '+48100200300', 'anna@acme.example',"
            " (SELECT id FROM accounts WHERE name = 'ACME'), 'sms.example', 'Will you come?', 100, 100)"
        )
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    with closing(sqlite3.connect(db)) as conn, conn:  # the clock stepped back, then a newer SMS of it went
        conn.execute("UPDATE conversations SET started_at = 95, last_mt_at = 200, text = 'At 11 then?'")
    out = cli.ok("restore", str(backup))
    assert any("1 conversations" in line for line in out), out
    # Left as the backup had it, the phone's answer to the newer SMS was quoted with the older one.
    assert rows(db, "SELECT started_at, last_mt_at, text FROM conversations") == [
        (95.0, 200.0, "At 11 then?")
    ]


def test_a_vote_for_a_service_added_after_the_backup_is_said_not_carried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, db, backup = acme_backed_up(tmp_path, capsys)
    with closing(sqlite3.connect(db)) as conn, conn:  # the service, and a vote for it, after the backup
        service(conn, 9)
        vote(conn, "mailed")
    out = cli.ok("restore", str(backup))
    said = "1 answers received since, 1 premium SMS of a service or account the backup lacks not carried"
    assert any(said in line for line in out), out
    assert rows(db, "SELECT COUNT(*) FROM premium_mo") == [(0,)]
    assert rows(db, "SELECT text FROM mo") == [("KP1 yes",)]


def test_the_sms_ids_kept_past_by_a_restore_are_kept_past_by_a_second_restore_before_any_new_sms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, db, backup = acme_backed_up(tmp_path, capsys)
    cli.ok("account", "add", "LATER")  # added after the backup: its mail is not carried, its SMS id is
    with closing(sqlite3.connect(db)) as conn, conn:  # an SMS accepted after the backup, then cancelled
        conn.execute(
            "INSERT INTO emails (id, account_id, mail_from, text, received_at)"
            " VALUES (1, (SELECT id FROM accounts WHERE name = 'LATER'), 'a@b.example', 'x', 1)"
        )
        conn.execute(
            "INSERT INTO messages (id, email_id, recipient, source, text, coding, parts_total, state,"
            " created_at, expires_at) VALUES (1, 1, '+48601000001', 'GW', 'x', 0, 1, 'cancelled', 1, 9e9)"
        )
    out = cli.ok("restore", str(backup))
    assert any(line.endswith("; SMS ids after 1") for line in out), out
    # Restored again (the wrong backup first, say): the restored database has no SMS, and its mark.
    out = cli.ok("restore", str(backup))
    assert any(line.endswith("; SMS ids after 1") for line in out), out
    assert rows(db, "SELECT value FROM billing_state WHERE key = 'ids_above/messages'") == [("1",)]


def test_an_account_and_a_service_added_after_the_backup_are_named_with_what_of_them_was_not_carried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli, db, backup = acme_backed_up(tmp_path, capsys)
    cli.ok("account", "add", "LATER")
    with closing(sqlite3.connect(db)) as conn, conn:  # its conversation, and a service of ACME's, since
        conn.execute(
            "INSERT INTO conversations (id, phone, number, user_email, account_id, domain, text, started_at,"
            " last_mt_at) VALUES (1, '+48601000001', '+48100200300', 'ewa@later.example',"
            " (SELECT id FROM accounts WHERE name = 'LATER'), 'sms.example', 'See you', 100, 100)"
        )
        service(conn, 9)
    out = cli.ok("restore", str(backup))
    # Left out without a word: the admin learnt of the account gone only when its users' mail was refused.
    said = next(line for line in out if line.startswith("carried from the replaced database"))
    assert (
        "1 conversations of an account the backup lacks not carried (the phones' answers to them go" in said
    )
    assert "premium services added after the backup not carried (KP1): add them again" in said
    assert "; accounts added after the backup not carried (LATER): add them again" in said
    assert rows(db, "SELECT COUNT(*) FROM conversations") == [(0,)]
    assert rows(db, "SELECT name FROM accounts") == [("ACME",)]
