"""`smsgw restore` of a backup older than the database it replaces: what went since is not sent again,
and the mail ids handed out since are not handed out again.

Restored as it was, every SMS that waited in the backup went out again at the next start, though the
replaced database showed the SMSC had taken it (the phone got it twice), and the next mail got the id
of one accepted after the backup (a sender's "queued as N" named another mail).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from gateway.store import restorecarry
from tests.conftest import DOMAIN, config_text, free_port, mail, send_blocking
from tests.test_account_show import CLI
from tests.test_process import smsgw, start_daemon

# The simulator holds each receipt DELAY seconds: the daemon is stopped with them still owed.
from tests.test_simulator_pending_reports import DELAY, until, with_simulator

NUMBERS = ["601000001", "601000002"]
PHONES = ["+48601000001", "+48601000002"]  # as the simulator logs them


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def part_states(db: Path) -> list[str]:
    return [str(r[0]) for r in rows(db, "SELECT state FROM parts ORDER BY id")]


def waiting(db: Path) -> int:
    return sum(state in ("queued", "deferred", "active") for state in part_states(db))


def simulated(tmp_path: Path) -> list[str]:
    """The SMS the built-in simulator took, one a part, by destination."""
    log = tmp_path / "sim.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    return sorted(str(json.loads(line).get("destination", line)) for line in lines)


async def send(smtp_port: int, text: str) -> None:
    rcpts = [f"{n}@{DOMAIN}" for n in NUMBERS]
    result = await asyncio.to_thread(send_blocking, smtp_port, mail(rcpts, text), rcpts)
    assert result.error is None and not result.refused


async def send_one(smtp_port: int, number: str, text: str) -> None:
    rcpt = f"{number}@{DOMAIN}"
    result = await asyncio.to_thread(send_blocking, smtp_port, mail(rcpt, text), [rcpt])
    assert result.error is None and not result.refused


async def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0


async def test_a_restore_sends_nothing_again_and_hands_out_no_mail_id_again(tmp_path: Path) -> None:
    smpp, smtp_port = free_port(), free_port()
    config = tmp_path / "config.toml"
    base = config_text(tmp_path, smsc_port=smpp, smtp_port=smtp_port)
    config.write_text(base)  # no SMSC yet: the first SMS wait in the queue, and in the backup
    db = tmp_path / "state" / "smsgw.db"
    proc = await start_daemon(config, smtp_port)
    try:
        await send(smtp_port, "Waiting in the backup")
        backup = tmp_path / "backup.db"
        assert (await asyncio.to_thread(smsgw, config, "backup", str(backup))).returncode == 0
    finally:
        await stop(proc)
    config.write_text(with_simulator(base, tmp_path, smpp))
    proc = await start_daemon(config, smtp_port)
    try:
        await send(smtp_port, "Accepted after the backup")
        # Every part taken by the SMSC, no receipt in yet: they land after the restore.
        await until(lambda: part_states(db) == ["submitted"] * 4, DELAY - 1, f"submitted: {part_states(db)}")
    finally:
        await stop(proc)
    assert simulated(tmp_path) == sorted(PHONES * 2)
    (newest,) = rows(db, "SELECT MAX(id) FROM emails")[0]
    sent = rows(db, "SELECT id, link, smsc_id FROM parts WHERE message_id IN (1, 2) ORDER BY id")

    res = await asyncio.to_thread(smsgw, config, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    carried = rows(db, "SELECT id, link, smsc_id FROM parts WHERE message_id IN (1, 2) ORDER BY id")

    proc = await start_daemon(config, smtp_port)
    try:
        # Those of the mail accepted after the backup, carried, too: their receipts find them.
        await until(lambda: part_states(db) == ["delivered"] * 4, DELAY + 20, f"delivered: {part_states(db)}")
        sent_again = simulated(tmp_path)
        await send(smtp_port, "After the restore")
        await until(lambda: len(part_states(db)) == 6 and waiting(db) == 0, 20, f"sent: {part_states(db)}")
    finally:
        await stop(proc)
    # Each SMS once: the ones sent before the restore were not sent again.
    assert sent_again == sorted(PHONES * 2)
    assert simulated(tmp_path) == sorted(PHONES * 3)
    assert rows(db, "SELECT state FROM messages WHERE id <= 4") == [("delivered",)] * 4
    (after,) = rows(db, "SELECT id FROM emails WHERE text LIKE '%After the restore%'")
    assert after[0] == newest + 1  # not the id of the mail accepted after the backup
    assert carried == sent  # the link and SMSC id their receipts are found by
    # The mail accepted after the backup, its SMS all gone, carried whole; the conversations their SMS
    # began (the phones' answers go to the sender), and what they were charged against the limits (a
    # user's and the account's month and day).
    said = "carried from the replaced database: 2 SMS already sent, 0 cancelled, 0 mails already sent,"
    said += f" 1 mails accepted after the backup (ids {newest}), 2 conversations, 4 usage counters"
    assert said in res.stdout, res.stdout
    assert "ids continue after" not in res.stdout  # the newest mail is itself carried
    assert said in str(rows(db, "SELECT detail FROM audit WHERE action = 'database.restore'"))
    shown = await asyncio.to_thread(smsgw, config, "queue", "show", "--mail", str(newest))
    assert shown.returncode == 0, shown.stderr
    assert "Accepted after the backup" in shown.stdout and "not sent as SMS" not in shown.stdout, shown.stdout


def test_a_damaged_replaced_database_is_restored_over_as_before_saying_why_nothing_was_carried(
    tmp_path: Path, capsys: object
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    cli = CLI(path, capsys)  # type: ignore[arg-type]
    cli.ok("account", "add", "ACME")
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    cli.ok("account", "add", "LATER")
    db = tmp_path / "state" / "smsgw.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size
    with db.open("r+b") as f:  # pages past the first overwritten: a damaged database
        f.seek(4096)
        f.write(b"\xa5" * (size - 4096))
    code, out, err = cli("restore", str(backup))
    assert code == 0, err
    assert any(line.startswith("nothing carried from the replaced database: ") for line in out), out
    assert any(line.endswith("; no SMS waits to go out in it") for line in out), out  # the backup has none
    assert [r[0] for r in rows(db, "SELECT name FROM accounts")] == ["ACME"]
    (detail,) = rows(db, "SELECT detail FROM audit WHERE action = 'database.restore'")[0]
    assert "; nothing carried from the replaced database: " in str(detail)
    assert str(tmp_path) not in str(detail)  # the panel shows the trail: no path of the server's


def test_an_outbox_mail_sent_since_the_backup_is_not_sent_again(tmp_path: Path, capsys: object) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    cli = CLI(path, capsys)  # type: ignore[arg-type]
    cli.ok("account", "add", "ACME")
    db = tmp_path / "state" / "smsgw.db"
    with closing(sqlite3.connect(db)) as conn:  # a receipt's mail waiting, as the daemon queues one
        conn.execute(
            "INSERT INTO outbox (kind, mail_from, rcpt, content, next_attempt_at, created_at)"
            " VALUES ('dlr', '', 'anna@acme.example', x'00', 1, 1)"
        )
        conn.commit()
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))
    with closing(sqlite3.connect(db)) as conn:  # and sent after the backup was taken
        conn.execute("UPDATE outbox SET state = 'sent', attempts = 1, sent_at = 2")
        conn.commit()
    out = cli.ok("restore", str(backup))
    assert (
        "carried from the replaced database: 0 SMS already sent, 0 cancelled, 1 mails already sent" in out
    ), out
    assert rows(db, "SELECT state, attempts, sent_at FROM outbox") == [("sent", 1, 2.0)]


def test_a_database_of_another_installation_is_restored_over_when_forced(
    tmp_path: Path, capsys: object
) -> None:
    configs = []
    for name in ("ours", "theirs"):
        (tmp_path / name / "state").mkdir(parents=True)
        configs.append(tmp_path / name / "config.toml")
        configs[-1].write_text(config_text(tmp_path / name, smsc_port=2775))
    ours, theirs = (CLI(path, capsys) for path in configs)  # type: ignore[arg-type]
    ours.ok("account", "add", "ACME")
    theirs.ok("account", "add", "ACME")  # the same name, another account
    db = tmp_path / "theirs" / "state" / "smsgw.db"
    with closing(sqlite3.connect(db)) as conn:  # created at another time, in another database
        conn.execute("UPDATE accounts SET created_at = created_at + 1")
        conn.commit()
    backup = tmp_path / "backup.db"
    ours.ok("backup", str(backup))
    code, _out, err = theirs("restore", str(backup))
    assert code == 1 and "--force" in err, err  # it holds an account of its own: refused unasked
    out = theirs.ok("restore", "--force", str(backup))
    why = "nothing carried from the replaced database: it is not the same database as the backup's"
    assert any(line.startswith(why) for line in out), out
    assert any(line.endswith("; no SMS waits to go out in it") for line in out), out  # the backup has none


async def test_receipts_got_since_the_backup_end_the_sms_that_waited_for_them(tmp_path: Path) -> None:
    smpp, smtp_port = free_port(), free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        with_simulator(config_text(tmp_path, smsc_port=smpp, smtp_port=smtp_port), tmp_path, smpp)
    )
    db = tmp_path / "state" / "smsgw.db"
    backup = tmp_path / "backup.db"
    proc = await start_daemon(config, smtp_port)
    try:
        await send(smtp_port, "Waiting for its receipt in the backup")
        await until(lambda: part_states(db) == ["submitted"] * 2, DELAY - 1, f"submitted: {part_states(db)}")
        assert (await asyncio.to_thread(smsgw, config, "backup", str(backup))).returncode == 0
        await until(lambda: part_states(db) == ["delivered"] * 2, DELAY + 20, f"delivered: {part_states(db)}")
    finally:
        await stop(proc)
    assert part_states(backup) == ["submitted"] * 2
    res = await asyncio.to_thread(smsgw, config, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    # Not `submitted` until their validity and a day, then `unreported` and billed as pending.
    assert part_states(db) == ["delivered"] * 2
    assert rows(db, "SELECT state FROM messages ORDER BY id") == [("delivered",), ("delivered",)]
    said = "carried from the replaced database: 0 SMS already sent, 0 cancelled, 0 mails already sent,"
    said += " 2 delivery reports"
    assert said in res.stdout, res.stdout


async def test_an_sms_cancelled_since_the_backup_stays_cancelled_and_a_long_sms_counts_once(
    tmp_path: Path,
) -> None:
    # Restored as queued, an SMS the admin stopped after the backup went out at the next start; and
    # one 3-part SMS sent since was said as "3 SMS already sent".
    smpp, smtp_port = free_port(), free_port()
    config = tmp_path / "config.toml"
    base = config_text(tmp_path, smsc_port=smpp, smtp_port=smtp_port)
    config.write_text(base)  # no SMSC yet: both wait in the queue, and in the backup
    db = tmp_path / "state" / "smsgw.db"
    long_text = "A long SMS in three parts, sent after the backup. " * 8
    proc = await start_daemon(config, smtp_port)
    try:
        await send_one(smtp_port, NUMBERS[0], "Stopped by the admin after the backup. " * 10)
        await send_one(smtp_port, NUMBERS[1], long_text)
        assert rows(db, "SELECT id, parts_total FROM messages ORDER BY id") == [(1, 3), (2, 3)]
        backup = tmp_path / "backup.db"
        assert (await asyncio.to_thread(smsgw, config, "backup", str(backup))).returncode == 0
        cancel = await asyncio.to_thread(smsgw, config, "queue", "cancel", "1")
        assert cancel.returncode == 0, cancel.stderr
    finally:
        await stop(proc)
    config.write_text(with_simulator(base, tmp_path, smpp))
    proc = await start_daemon(config, smtp_port)
    try:
        await until(
            lambda: part_states(db) == ["cancelled"] * 3 + ["submitted"] * 3, DELAY - 1, f"{part_states(db)}"
        )
    finally:
        await stop(proc)
    assert simulated(tmp_path) == [PHONES[1]] * 3

    res = await asyncio.to_thread(smsgw, config, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    said = "carried from the replaced database: 1 SMS already sent, 1 cancelled, 0 mails already sent"
    assert said in res.stdout, res.stdout
    assert said in str(rows(db, "SELECT detail FROM audit WHERE action = 'database.restore'"))
    assert part_states(db) == ["cancelled"] * 3 + ["submitted"] * 3
    assert rows(db, "SELECT state FROM messages ORDER BY id") == [("cancelled",), ("submitted",)]


def test_a_copy_that_cannot_be_written_stops_the_restore_rather_than_carrying_nothing(
    tmp_path: Path, capsys: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk while carrying: the restore must stop, saying so, not go on with "nothing carried"
    # (the SMS the SMSC took since the backup then went out again). The disk is made full where SQLite
    # writes the copy (no full filesystem can be made here): the error SQLite gives for one.
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    cli = CLI(path, capsys)  # type: ignore[arg-type]
    cli.ok("account", "add", "ACME")
    backup = tmp_path / "backup.db"
    cli.ok("backup", str(backup))

    def full(copy: sqlite3.Connection) -> int:
        exc = sqlite3.OperationalError("database or disk is full")
        exc.sqlite_errorcode = sqlite3.SQLITE_FULL
        raise exc

    monkeypatch.setattr(restorecarry, "_carry_mails", full)
    code, out, err = cli("restore", str(backup))
    assert code != 0, out
    assert "database or disk is full" in err and "Free space" in err, err
    assert not any(line.startswith("nothing carried from the replaced database") for line in out), out
    assert [r[0] for r in rows(tmp_path / "state" / "smsgw.db", "SELECT name FROM accounts")] == ["ACME"]
