"""A person's letter about their number (GDPR art. 15 and 17): "what do you hold about +48 601 123 456,
and erase it". The operator answered it with SQL and missed the copies of a text the schema keeps:
the parts, the delivery report, the mails about the SMS.

Real peers make the rows: a real SMTP client mails the running gateway, the built-in simulator's
SMSC takes the SMS and reports it delivered, the phone answers through its control port (mailed to
a real SMTP sink), then texts STOP. `smsgw phone show|forget` runs as a separate process on the same
SQLite file while the daemon runs; the erased database file is read byte by byte for the texts.
What still waits, unmatched receipts, and bounces and auto-replies have modules of their own
(test_phone_privacy_waiting.py, _receipts.py, _bounces.py); the helpers they import stay here.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from billing_reports.monthly import Month
from gateway.config import Config, parse_config
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_process import smsgw
from tests.test_two_way import BOB, PHONE

# Words found nowhere else, one per text the phone's request is about.
SENT_WORD = "Zyrafkowo"  # in the staff member's SMS to the phone (a mail to it alone)
ANSWER_WORD = "Kolibrzyk"  # in the phone's answer
SHARED_WORD = "Wspolnota"  # in a mail to the phone and another number: the sender's, kept
OTHER = "+48601123457"
ERASED = "[erased at the phone's request]"
WARSAW = "Europe/Warsaw"
ACME_SENDER = "+48100200300"  # the number the staff member's SMS come from


def written_two_way(tmp_path: Path, relay: int) -> tuple[Path, Config]:
    """The two-way world of tests/test_two_way.py (the built-in simulator reporting at once), as a
    file too: `smsgw` runs as another process and reads it."""
    smpp, cimd2, control = free_port(), free_port(), free_port()
    text = config_text(
        tmp_path,
        smsc_port=smpp,
        relay_port=relay,
        extra=f'\n[[account]]\nname = "other"\nrelay_networks = ["127.0.0.0/8"]\nusers = ["{BOB}"]\n'
        'sender = "+48100200300"\n\n[replies]\npool = []\n',
    ).replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path, parse_config(text, source=str(path), base_dir=tmp_path)


async def cli(path: Path, *args: str) -> Any:
    return await asyncio.to_thread(smsgw, path, *args)


async def answer(gw: Any, sink: Any, text: str) -> None:
    """The phone texts the number its SMS came from; until the mail it becomes reaches the sink."""
    before = len(sink.messages)
    command = {"op": "mo", "source": PHONE, "destination": ACME_SENDER, "text": text}
    sent = await send_command("127.0.0.1", gw.daemon.simulator.control_port, command)
    assert sent["ok"], sent
    await sink.wait(before + 1)


def texts(conn: sqlite3.Connection) -> dict[str, list[Any]]:
    """Every column that may hold a text of the phone, table by table."""
    return {
        table: conn.execute(f"SELECT {cols} FROM {table} ORDER BY rowid").fetchall()
        for table, cols in (
            ("messages", "id, text, state"),
            ("parts", "id, text, payload, state"),
            ("dlrs", "id, raw"),
            ("emails", "id, subject, text"),
            ("mo", "id, text, state, conversation_id"),
            ("conversations", "id, phone, text"),
            ("outbox", "id, state, content"),
            ("optouts", "number, word"),
        )
    }


def file_bytes(db: Path) -> bytes:
    """The database as it lies on disk, its WAL taken in and truncated first."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_show_lists_the_phones_rows_and_forget_erases_its_texts_and_keeps_billing_and_optout(
    tmp_path: Path,
) -> None:
    relay = free_port()
    path, cfg = written_two_way(tmp_path, relay)
    db = cfg.db_path
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        conn = gw.store.db.conn
        assert (
            await gw.send(mail(f"601123456@{DOMAIN}", f"Termin u {SENT_WORD} jutro", "Wizyta"))
        ).error is None
        await gw.until(lambda: len(core.records) == 1)
        await gw.until(
            lambda: (
                conn.execute("SELECT state FROM messages WHERE recipient = ?", (PHONE,)).fetchone()
                == ("delivered",)
            )
        )
        await answer(gw, sink, f"Potwierdzam, {ANSWER_WORD}")
        shared = mail([f"601123456@{DOMAIN}", f"601123457@{DOMAIN}"], f"Zebranie {SHARED_WORD} o 10")
        assert (await gw.send(shared)).error is None
        await gw.until(lambda: len(core.records) == 3)
        await answer(gw, sink, "STOP")
        await gw.until(lambda: bool(gw.store.policy.is_opted_out(PHONE)))
        await gw.until(
            lambda: (
                conn.execute(
                    "SELECT COUNT(*) FROM messages WHERE state NOT IN ('delivered', 'failed')"
                ).fetchone()
                == (0,)
            )
        )
        await gw.until(
            lambda: conn.execute("SELECT COUNT(*) FROM outbox WHERE state <> 'sent'").fetchone() == (0,)
        )
        (reply_mails,) = conn.execute("SELECT COUNT(*) FROM outbox WHERE mo_ref IS NOT NULL").fetchone()
        assert reply_mails == 2  # the answer and the STOP, each mailed to the staff member

        # Art. 15: any written form of the number; times in [gateway] timezone.
        shown = await cli(path, "phone", "show", "+48 601-123-456")
        with_texts = await cli(path, "phone", "show", "0048601123456", "--texts")
        bad = await cli(path, "phone", "show", "601-ABC")

        before = texts(conn)
        asked = await cli(path, "phone", "forget", "601123456")
        unchanged = texts(conn)
        forgot = await cli(path, "--log-level", "INFO", "phone", "forget", "+48601123456", "--yes")
        after = texts(conn)
        shown_after = await cli(path, "phone", "show", PHONE, "--texts")
        audit = await cli(path, "audit", "--actor", "cli:")

    assert shown.returncode == 0, shown.stderr
    assert f"times in {WARSAW}" in shown.stderr
    out = shown.stdout.splitlines()
    assert out[0] == f"phone {PHONE}"
    for line in (
        "sms sent to it: 2",
        "sms received from it: 2",
        "premium sms from it: 0",
        "conversations: 1",
        "mails about it (outbox): 2",
        "kept answers (past the hourly limit, not mailed yet): 0",
        "(the texts with --texts)",
    ):
        assert line in out, (line, shown.stdout)
    sms = [line for line in out if line.startswith("  sms ")]
    assert len(sms) == 2 and all("account acme" in s and f"by {STAFF}" in s and "delivered" in s for s in sms)
    assert len([line for line in out if line.startswith("  mo ") and f"→ {STAFF}" in line]) == 2
    assert any(line.startswith("  via ") and STAFF in line for line in out), out
    assert any(line.startswith("opt-out: on the list since ") and "STOP" in line for line in out), out
    assert SENT_WORD not in shown.stdout and ANSWER_WORD not in shown.stdout  # the texts only when asked
    assert with_texts.returncode == 0, with_texts.stderr
    assert f"    text: Wizyta: Termin u {SENT_WORD} jutro" in with_texts.stdout.splitlines()
    assert f"    text: Potwierdzam, {ANSWER_WORD}" in with_texts.stdout.splitlines()
    assert bad.returncode == 2 and "'601-ABC' is not a phone number" in bad.stderr

    # Without --yes: what would go, and nothing changed.
    assert asked.returncode == 1, asked.stdout
    assert "give --yes to erase" in asked.stderr
    assert "  texts of 2 SMS sent to it (their parts and delivery reports too)" in asked.stdout.splitlines()
    assert (
        "  text and subject of 1 mail the SMS came in (all its SMS went to it)" in asked.stdout.splitlines()
    )
    assert (
        "  kept: the text of 1 mail that went to other numbers too (its sender's)"
        in asked.stdout.splitlines()
    )
    assert "  kept: the opt-out entry: it is how the person's objection to SMS is honoured" in asked.stdout
    assert unchanged == before

    # With --yes: counted, the opt-out and the billing facts kept and said so.
    assert forgot.returncode == 0, forgot.stderr
    said = forgot.stdout
    for line in (
        "erased: texts of 2 SMS sent to it (2 parts, 2 delivery reports)",
        "erased: texts of 2 SMS received from it (0 kept past the hourly limit: not mailed)",
        "erased: 1 mail the SMS came in (text and subject)",
        "erased: 2 outbox mails about it (0 queued: not sent)",
        "deleted: 1 conversation",
        "kept: the text of 1 mail that went to other numbers too (its sender's)",
        "kept: the opt-out entry: it is how the person's objection to SMS is honoured",
        "kept: the billing files already written (they are the bills): not changed",
    ):
        assert f"  {line}" in said.splitlines(), (line, said)
    assert PHONE not in forgot.stderr and "601123456" not in forgot.stderr  # the log lines name no number
    assert "privacy.phone_forgotten" in forgot.stderr

    # Every text of the phone gone from the rows, the rows themselves kept.
    assert [r[0] for r in after["messages"]] == [r[0] for r in before["messages"]]
    assert [r[2] for r in after["messages"]] == [r[2] for r in before["messages"]]  # states: billing facts
    assert after["optouts"] == before["optouts"] == [(PHONE, "STOP")]
    # The reports as the SMSC wrote them (a real SMSC's quote the text's start; the simulator's not).
    assert [r[1] for r in after["dlrs"]].count(ERASED) == 2 and len(after["dlrs"]) == 3
    assert [r[1] for r in before["conversations"]] == [PHONE, OTHER]
    assert [r[1] for r in after["conversations"]] == [OTHER]  # another number's, another person's
    assert all(r[3] is None for r in after["mo"])  # no MO names a conversation id SQLite may give again
    shared_mail = [r for r in after["emails"] if SHARED_WORD in r[2]]
    assert len(shared_mail) == 1  # the sender's mail to another number too keeps its text
    # ... and so does the other number's SMS; the phone's own copy of it is erased.
    with sqlite3.connect(db) as check:
        assert check.execute("SELECT text FROM messages WHERE recipient = ?", (OTHER,)).fetchone()[0] == (
            f"Zebranie {SHARED_WORD} o 10"
        )
        assert {r[0] for r in check.execute("SELECT text FROM messages WHERE recipient = ?", (PHONE,))} == {
            "[erased at the phone's request]"
        }
    assert shown_after.returncode == 0
    assert "conversations: 0" in shown_after.stdout.splitlines()
    assert SENT_WORD not in shown_after.stdout and ANSWER_WORD not in shown_after.stdout
    assert audit.returncode == 0, audit.stderr
    [row] = [line for line in audit.stdout.splitlines() if "phone.forget" in line]
    assert f"{PHONE}: texts erased: 2 SMS sent (2 parts, 2 reports), 2 received" in row
    assert SENT_WORD not in row and ANSWER_WORD not in row

    # The file itself: no copy of the texts anywhere in its pages (other tables, freed space).
    raw = file_bytes(db)
    assert SENT_WORD.encode() not in raw and ANSWER_WORD.encode() not in raw
    assert SHARED_WORD.encode() in raw  # the check can see a text that is there

    # The month's billing still counts the phone's SMS.
    month = Month.containing(time.time(), ZoneInfo(WARSAW))
    billed = await cli(path, "billing", "run", "--month", str(month))
    assert billed.returncode == 0, billed.stderr
    bill = (cfg.billing_dir / str(month) / "acme.txt").read_text()
    rows = [line.split("\t") for line in bill.splitlines() if not line.startswith(("#", "total", "end"))]
    assert [(r[2], r[5], r[7]) for r in rows if PHONE in (r[4], r[5])] == [
        ("MT", PHONE, "delivered"),
        ("MO-reply", ACME_SENDER, "delivered"),
        ("MT", PHONE, "delivered"),
        ("MO-reply", ACME_SENDER, "delivered"),
    ], bill
    assert "total\tall\t-\t5\t5\t5\t0" in bill


NOTICE_WORD = "Pelikanowo"  # in the subject of a mail to the phone alone, which its notices quote


async def test_the_notices_about_a_mail_to_the_phone_alone_are_listed_and_erased(tmp_path: Path) -> None:
    """The account wants a confirmation of each mail: it quotes the mail's subject and numbers. For
    a mail all of whose SMS went to the phone it is one of the mails about it; for a mail to other
    numbers too it is its sender's, as the mail is."""
    relay = free_port()
    path, cfg = written_two_way(tmp_path, relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        conn = gw.store.db.conn
        assert (await cli(path, "account", "set", "acme", "--confirm", "on")).returncode == 0
        alone = mail(f"601123456@{DOMAIN}", "Jutro o 10", f"Wizyta {NOTICE_WORD}")
        assert (await gw.send(alone)).error is None
        shared = mail([f"601123456@{DOMAIN}", f"601123457@{DOMAIN}"], "Zebranie", f"Zebranie {SHARED_WORD}")
        assert (await gw.send(shared)).error is None
        await gw.until(lambda: len(sink.messages) >= 2)
        confirmations = conn.execute(
            "SELECT id FROM outbox WHERE kind = 'confirmation' ORDER BY id"
        ).fetchall()
        assert len(confirmations) == 2
        mine, theirs = confirmations[0][0], confirmations[1][0]
        shown = await cli(path, "phone", "show", PHONE)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        content = dict(conn.execute("SELECT id, content FROM outbox WHERE kind = 'confirmation'").fetchall())
    assert shown.returncode == 0, shown.stderr
    listed = [line for line in shown.stdout.splitlines() if line.startswith(f"  mail {mine} ")]
    assert len(listed) == 1 and "confirmation to" in listed[0], shown.stdout
    assert not any(line.startswith(f"  mail {theirs} ") for line in shown.stdout.splitlines())
    assert forgot.returncode == 0, forgot.stderr
    assert "WAL" not in forgot.stdout  # emptied: nothing read it meanwhile
    assert content[mine] == ERASED.encode()
    assert SHARED_WORD.encode() in content[theirs]  # the sender's mail to another number too: kept
    assert NOTICE_WORD.encode() not in file_bytes(cfg.db_path)
