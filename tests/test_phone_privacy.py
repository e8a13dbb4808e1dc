"""A person's letter about their number (GDPR art. 15 and 17): "what do you hold about +48 601 123 456,
and erase it". The operator answered it with SQL and missed the copies of a text the schema keeps:
the parts, the delivery report, the mails about the SMS.

Real peers make the rows: a real SMTP client mails the running gateway, the built-in simulator's
SMSC takes the SMS and reports it delivered, the phone answers through its control port (mailed to
a real SMTP sink), then texts STOP. `smsgw phone show|forget` runs as a separate process on the same
SQLite file while the daemon runs; the erased database file is read byte by byte for the texts.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from billing_reports.monthly import Month
from gateway.config import Config, parse_config
from gateway.privacy.cli import WAL_KEPT
from gateway.store.db import Store
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


async def test_forget_refuses_while_an_sms_to_the_phone_waits_to_be_sent(tmp_path: Path) -> None:
    path, cfg = written_two_way(tmp_path, free_port())
    cfg_text = path.read_text()
    # No SMSC where the link points: the SMS waits in the queue.
    path.write_text(cfg_text.replace("[simulator]\nenabled = true", "[simulator]\nenabled = false"))
    cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
    async with running_gateway(cfg) as gw:
        assert (await gw.send(mail(f"601123456@{DOMAIN}", f"Czekam {SENT_WORD}"))).error is None
        (message_id,) = gw.store.db.conn.execute("SELECT id FROM messages").fetchone()
        refused = await cli(path, "phone", "forget", PHONE, "--yes")
        asked = await cli(path, "phone", "forget", PHONE)
        text = gw.store.db.conn.execute("SELECT text FROM messages").fetchone()[0]
        cancelled = await cli(path, "queue", "cancel", str(message_id))
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        erased = gw.store.db.conn.execute("SELECT text FROM messages").fetchone()[0]
    for res in (refused, asked):
        assert res.returncode == 1
        assert f"1 SMS to {PHONE} not sent yet (message {message_id}): cancel them first" in res.stderr
        assert "smsgw queue cancel ID" in res.stderr and "nothing erased" in res.stderr
    assert text == f"Czekam {SENT_WORD}"  # the dispatcher's text left alone
    assert cancelled.returncode == 0, cancelled.stderr
    assert forgot.returncode == 0, forgot.stderr
    assert erased == "[erased at the phone's request]"


async def test_an_answer_mail_still_queued_is_erased_and_not_sent(tmp_path: Path) -> None:
    """The relay is down: the phone's answer waits in the outbox, quoting its text. Erased, it is
    not sent (the marker would reach the user), and says why in `outbox list`."""
    path, cfg = written_two_way(tmp_path, free_port())  # nothing listens on the relay's port
    async with running_gateway(cfg) as gw:
        core, conn = gw.daemon.simulator.core, gw.store.db.conn
        assert (await gw.send(mail(f"601123456@{DOMAIN}", "Jutro o 10"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        await gw.until(lambda: conn.execute("SELECT state FROM messages").fetchone() == ("delivered",))
        command = {"op": "mo", "source": PHONE, "destination": ACME_SENDER, "text": f"Dobrze {ANSWER_WORD}"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await gw.until(
            lambda: conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'reply'").fetchone() == (1,)
        )
        assert conn.execute("SELECT state FROM outbox").fetchone() == ("queued",)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        row = conn.execute("SELECT state, last_error, content FROM outbox").fetchone()
        listed = await cli(path, "outbox", "list")
    assert forgot.returncode == 0, forgot.stderr
    assert "  erased: 1 outbox mail about it (1 queued: not sent)" in forgot.stdout.splitlines()
    assert row == (
        "failed",
        "not sent: its text was erased at the phone's request",
        b"[erased at the phone's request]",
    )
    assert "not sent: its text was erased at the phone's request" in listed.stdout
    assert ANSWER_WORD.encode() not in file_bytes(cfg.db_path)


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


PART_WORD = "Bocianowo"  # in the first part of a long SMS from the phone, its rest not come yet
SENDER_ID_WORD = "Nadawcowo"  # in an SMS from a sender ID written as the phone's digits without "+"


async def test_forget_deletes_waiting_parts_and_leaves_a_sender_id_written_as_digits(tmp_path: Path) -> None:
    """A long SMS half received: its first part waits for the rest. Erased, the rest joined the
    marker and went to the user as an SMS; deleted, the rest makes an incomplete SMS of its own.
    And a source that no plan read as a number is kept as written: "48601123456" is a sender ID
    (the phone itself would be stored "+48601123456"), another sender's SMS, not the phone's."""
    path, cfg = written_two_way(tmp_path, free_port())
    async with running_gateway(cfg) as gw:
        mo, conn, write = gw.store.mo, gw.store.db.conn, gw.store.write
        first = await write(
            lambda: mo.record_mo("sim", PHONE, ACME_SENDER, f"Pierwsza {PART_WORD} ", 0, (77, 2, 1))
        )
        assert first is None
        other = await write(
            lambda: mo.record_mo("sim", PHONE[1:], ACME_SENDER, f"Od nadawcy {SENDER_ID_WORD}", 0, None)
        )
        assert other is not None
        shown = await cli(path, "phone", "show", PHONE)
        # A reader holding its snapshot (a report, a backup): the WAL cannot be emptied now.
        reader = sqlite3.connect(cfg.db_path)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM mo").fetchone()
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        reader.close()
        rest = await write(lambda: mo.record_mo("sim", PHONE, ACME_SENDER, "i reszta", 0, (77, 2, 2)))
        # Waiting for its first part now; joined with a gap marker at the timeout.
        joined = rest or (await write(lambda: mo.join_stale_segments(time.time() + 1)))[0]
        text = conn.execute("SELECT text FROM mo WHERE id = ?", (joined,)).fetchone()[0]
        kept = conn.execute("SELECT text FROM mo WHERE id = ?", (other,)).fetchone()[0]
    assert kept == f"Od nadawcy {SENDER_ID_WORD}"
    assert rest is None and ERASED not in text and PART_WORD not in text and text.endswith("i reszta")
    assert shown.returncode == 0, shown.stderr
    assert "sms received from it: 0" in shown.stdout.splitlines(), shown.stdout
    assert "parts of a long SMS from it waiting for the rest: 1" in shown.stdout.splitlines()
    assert forgot.returncode == 0, forgot.stderr
    assert f"  {WAL_KEPT}" in forgot.stdout.splitlines(), forgot.stdout
    assert (
        "  deleted: 1 part of a long SMS from it waiting for the rest (deleted: the parts coming later"
        " make an incomplete SMS of their own)" in forgot.stdout.splitlines()
    ), forgot.stdout


VOTE_WORD = "Glosowo"  # in a premium SMS kept until its client's address confirms


async def test_a_premium_sms_awaiting_confirmation_is_ended_and_never_mailed(tmp_path: Path) -> None:
    """A vote kept until the client's address confirms: erased and left waiting, the confirmation
    mailed the client the marker as the phone's premium SMS. Ended, it is mailed to nobody; the
    phone paid for it: its billing facts stay."""
    from tests.test_premium_loop import premium_config, reply_to, smtp
    from tests.test_two_way import parsed

    relay = free_port()
    path, pcfg = premium_config(tmp_path, "smpp", relay)
    cfg: Config = pcfg  # type: ignore[assignment]
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        added = await cli(path, "premium", "add", "kp123", "--account", "acme", "--email", "konkurs@acme.pl")
        assert added.returncode == 0, added.stderr
        gw.store.outbox.on_queued()
        await sink.wait(1)
        ask = parsed(sink.messages[0][2])
        vote = {"op": "mo", "source": PHONE, "destination": "7355", "text": f"KP123 vote {VOTE_WORD}"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, vote))["ok"]
        db = gw.store.db.conn
        await gw.until(lambda: db.execute("SELECT state FROM premium_mo").fetchone() == ("awaiting",))
        shown = await cli(path, "phone", "show", PHONE)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        assert (await smtp(gw.port, *reply_to(ask, "yes, that is us"))).error is None
        row = db.execute(
            "SELECT state, text, parts, price, service_id, account_id FROM premium_mo"
        ).fetchone()
        mailed = db.execute(
            "SELECT COUNT(*) FROM outbox WHERE kind IN ('premium', 'premium-fallback')"
        ).fetchone()
        month = Month.containing(time.time(), ZoneInfo(WARSAW))
        billed = await cli(path, "billing", "run", "--month", str(month))
        assert billed.returncode == 0, billed.stderr
        acme = (cfg.billing_dir / str(month) / "acme.txt").read_text()
    # Money as `premium stats` shows it: PLN with two decimals (it said "300 grosze").
    [vote_line] = [line for line in shown.stdout.splitlines() if line.startswith("  premium ")]
    assert "  to 7355  KP123  1 part  3.00 PLN  awaiting  " in vote_line, vote_line
    assert forgot.returncode == 0, forgot.stderr
    assert mailed == (0,)  # confirmed, and the vote mailed to nobody
    assert row[:2] == ("erased", ERASED) and row[2] == 1 and row[3] > 0
    # No client took it: the phone's price stays, no client's account earns its commission (the
    # client's file paid the commission on a vote it never got).
    assert row[4:] == (None, None)
    assert "total\tkind\tpremium-MO\t0\t0\t0\t0\t0\t0\t0.00\t0.00" in acme.splitlines(), acme
    assert (
        "  ended: 1 premium SMS kept until the client's address confirms: ended, never mailed"
        in forgot.stdout.splitlines()
    ), forgot.stdout


FALLBACK = "ops@acme.example"
OOF_WORD = "Urlopowo"  # in an out-of-office reply to the phone alone: never sent, its notice names it
BOUNCE_WORD = "Odbiciowo"  # in a bounce sent to the phone's address
DSN_WORD = "Zwrotowo"  # in a bounce of a mail the gateway wrote about the phone (its answer)


def named_config(tmp_path: Path, relay: int) -> tuple[Path, Config]:
    """The two-way world with one identical SMS a day to a number and bounces forwarded."""
    path, _ = written_two_way(tmp_path, relay)
    text = path.read_text().replace("[gateway]\n", "[gateway]\nidentical_per_day = 1\n", 1)
    text = text.replace("[replies]\npool = []", f'[replies]\npool = []\nfallback_address = "{FALLBACK}"')
    path.write_text(text)
    return path, parse_config(text, source=str(path), base_dir=tmp_path)


def dsn_about_the_phone() -> bytes:
    """A relay's DSN about the mail that carried the phone's answer to a user, sent back to the
    gateway's From address: it quotes that mail's subject and headers, which name the phone."""
    return (
        "From: MAILER-DAEMON@mx.acme.example\r\nTo: smsgw@" + DOMAIN + "\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-phone@mx.acme.example>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
        f'Your message "SMS from {PHONE}: Dobrze {DSN_WORD}" to jan@acme.example could not be delivered.\r\n'
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.acme.example\r\n\r\n"
        "Final-Recipient: rfc822; jan@acme.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {PHONE}@{DOMAIN}\r\nTo: jan@acme.example\r\nSubject: SMS from {PHONE}: Dobrze {DSN_WORD}\r\n"
        "--b--\r\n"
    ).encode()


def plain_text(content: bytes) -> str:
    from email import message_from_bytes, policy

    msg = message_from_bytes(content, policy=policy.default)
    return f"{msg['Subject']}\n{msg.get_body(('plain',)).get_content()}"  # type: ignore[union-attr]


async def test_the_mails_naming_the_phone_with_no_sms_to_it_behind_them_are_found_and_erased(
    tmp_path: Path,
) -> None:
    """Mails that name the phone with no row of it behind them: the notice of a group mail that left
    it out (it had its identical SMS today), the notice of an out-of-office reply to it (never
    sent), a bounce to its address forwarded, and a bounce of a mail about it forwarded. Each is
    found; the group mail's notice loses only the number (the sender's subject and the other number
    stay), the others go whole, and so do the records of the mails and bounces to it alone."""
    from tests.test_bounces import bounce, delivered

    relay = free_port()
    path, cfg = named_config(tmp_path, relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        conn = gw.store.db.conn
        assert (await gw.send(mail(f"601123456@{DOMAIN}", "o 10", "Zebranie"))).error is None
        group = mail([f"601123456@{DOMAIN}", f"601123457@{DOMAIN}"], "o 10", "Zebranie")
        assert (await gw.send(group)).error is None
        oof = mail(f"601123456@{DOMAIN}", "Wracam w poniedzialek", f"Out of office {OOF_WORD}")
        oof["X-Auto-Response-Suppress"] = "All"
        assert (await gw.send(oof)).error is None
        own = f"601123456@{DOMAIN}"
        to_phone = bounce("<bounce-phone@mx.acme.example>", f"Undelivered {BOUNCE_WORD}")
        assert (await delivered(gw.port, to_phone, rcpt=own)).startswith("250 ")
        assert (await delivered(gw.port, dsn_about_the_phone(), rcpt=f"smsgw@{DOMAIN}")).startswith("250 ")
        await sink.wait(4)
        mails = dict(conn.execute("SELECT id, kind FROM outbox ORDER BY id").fetchall())
        assert sorted(mails.values()) == ["bounce-forward", "bounce-forward", "not-sent", "not-sent"]
        left_out, oof_notice, phone_bounce, dsn_forward = sorted(mails)
        records = dict(conn.execute("SELECT id, email_ref FROM outbox").fetchall())
        before = plain_text(
            conn.execute("SELECT content FROM outbox WHERE id = ?", (left_out,)).fetchone()[0]
        )
        shown = await cli(path, "phone", "show", PHONE)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        after = dict(conn.execute("SELECT id, content FROM outbox").fetchall())
        emails = {r[0]: r[1:] for r in conn.execute("SELECT id, subject, text FROM emails")}
        shown_after = await cli(path, "phone", "show", PHONE)
    assert PHONE in before and OTHER in before and "Zebranie" in before  # the group mail's notice
    assert shown.returncode == 0, shown.stderr
    assert "mails about it (outbox): 4" in shown.stdout.splitlines(), shown.stdout
    for id_ in mails:
        assert any(line.startswith(f"  mail {id_} ") for line in shown.stdout.splitlines()), shown.stdout
    assert forgot.returncode == 0, forgot.stderr
    said = forgot.stdout.splitlines()
    assert "  erased: its number in 1 outbox mail naming other numbers too" in said, forgot.stdout
    assert "  erased: 3 mails to it alone, not sent as SMS (bounces, out-of-office replies)" in said, said
    # The group mail's notice: the sender still hears the other number got it, of the phone nothing.
    told = plain_text(after[left_out])
    assert PHONE not in told and OTHER in told and "Zebranie" in told and ERASED in told
    assert after[oof_notice] == after[phone_bounce] == after[dsn_forward] == ERASED.encode()
    for id_ in (oof_notice, phone_bounce, dsn_forward):
        assert emails[records[id_]] == (None, ERASED)
    assert emails[records[left_out]][1] == "Zebranie: o 10"  # the group mail: its sender's, kept
    # Found by what they said: erased, they name it no more.
    assert "mails about it (outbox): 0" in shown_after.stdout.splitlines(), shown_after.stdout
    raw = file_bytes(cfg.db_path)
    for word in (OOF_WORD, BOUNCE_WORD, DSN_WORD):
        assert word.encode() not in raw, word


RECEIPT_WORD = "Kwitowo"  # in the SMSC's quote of the phone's SMS, in a receipt never matched to it
OTHER_RECEIPT_WORD = "Cudzowo"  # in another phone's receipt never matched either: not the phone's


async def test_receipts_never_matched_to_an_sms_are_found_by_the_phone_and_erased(tmp_path: Path) -> None:
    """Receipts stored before they were stripped of the SMSC's quote of the text, and never matched
    to a part: an SMPP receipt of the phone's SMS saying otherwise after the SMS was settled (found
    by the SMSC id its part was given), and a CIMD2 report whose key ends in the phone's number. A
    report about another phone stays as it came. (A repeat of the receipt that settled it is kept
    with its part.)"""
    path, cfg = written_two_way(tmp_path, free_port())
    async with running_gateway(cfg) as gw:
        conn, queue = gw.store.db.conn, gw.store.queue
        assert (await gw.send(mail(f"601123456@{DOMAIN}", f"Termin {RECEIPT_WORD}"))).error is None
        await gw.until(lambda: conn.execute("SELECT state FROM messages").fetchone() == ("delivered",))
        link, smsc_id = conn.execute("SELECT link, smsc_id FROM parts").fetchone()
        quote = f"id:{smsc_id} sub:001 dlvrd:000 submit date:2612031200 done date:2612031201 stat:UNDELIV"
        receipts = [
            (link, smsc_id, f"{quote} err:000 text:Termin {RECEIPT_WORD}", PHONE),
            (link, f"2612031200:{PHONE[1:]}", f"021:{PHONE[1:]} 060:2612031200 033:{RECEIPT_WORD}", PHONE),
            (
                link,
                f"2612031200:{OTHER[1:]}",
                f"021:{OTHER[1:]} 060:2612031200 033:{OTHER_RECEIPT_WORD}",
                OTHER,
            ),
        ]
        for link_, id_, raw, phone in receipts:
            status = "failed" if "UNDELIV" in raw else "delivered"
            await gw.store.write(
                lambda link_=link_, id_=id_, raw=raw, phone=phone, status=status: queue.record_report(
                    link_, id_, status, None, raw, phone
                )
            )
        unmatched = conn.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone()[0]
        shown = await cli(path, "phone", "show", PHONE)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        raws = [r[0] for r in conn.execute("SELECT raw FROM dlrs WHERE part_id IS NULL ORDER BY id")]
    assert unmatched == 3
    assert shown.returncode == 0, shown.stderr
    assert "delivery reports never matched to an SMS: 2" in shown.stdout.splitlines(), shown.stdout
    assert forgot.returncode == 0, forgot.stderr
    assert "  erased: 2 delivery reports never matched to an SMS (as the SMSC wrote them)" in (
        forgot.stdout.splitlines()
    ), forgot.stdout
    assert raws[:2] == [ERASED, ERASED] and OTHER_RECEIPT_WORD in raws[2]
    raw = file_bytes(cfg.db_path)
    assert RECEIPT_WORD.encode() not in raw and OTHER_RECEIPT_WORD.encode() in raw


PREMIUM_BOUNCE_WORD = "Zwrotkowo"  # in the client's server's bounce of the mail of the phone's premium SMS


async def test_the_record_of_a_bounce_of_the_phones_premium_sms_mail_is_erased(tmp_path: Path) -> None:
    """The client's server bounces the mail that carried the phone's vote, quoting it: the forward
    was found by its premium SMS already; the bounce's own record (`emails`) is now found with it."""
    from tests.test_bounces import delivered, dsn
    from tests.test_premium_bounces import config, mailed_vote

    relay = free_port()
    path, cfg = config(tmp_path, relay, fallback=True)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        address = await mailed_vote(gw, path, sink)
        bounce = dsn("<dsn-vote@mx.acme.pl>").replace(
            b"could not be delivered.", f"could not be delivered: KP123 vote {PREMIUM_BOUNCE_WORD}.".encode()
        )
        assert (await delivered(gw.port, bounce, rcpt=address)).startswith("250 ")
        db = gw.store.db.conn
        (record,) = db.execute("SELECT id FROM emails WHERE automatic IS NOT NULL").fetchone()
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        row = db.execute("SELECT subject, text FROM emails WHERE id = ?", (record,)).fetchone()
    assert forgot.returncode == 0, forgot.stderr
    assert "  erased: 1 mail to it alone, not sent as SMS (bounces, out-of-office replies)" in (
        forgot.stdout.splitlines()
    ), forgot.stdout
    assert row == (None, ERASED)
    assert PREMIUM_BOUNCE_WORD.encode() not in file_bytes(cfg.db_path)


SPACED = "+48 601 123 456"  # the phone as the gateway writes it for a person (`numbers.display`)
SPACED_WORD = "Spacjowo"  # in a bounce quoting an answer mail's subject, which names the phone so
GROUP_WORD = "Grupowo"  # in a bounce naming the phone and another number


def ndr(subject_line: str, word: str, mid: str) -> bytes:
    """A plain-text bounce to the gateway's own address quoting the subject of the mail it bounces."""
    return (
        f"From: MAILER-DAEMON@mx.acme.example\r\nTo: smsgw@{DOMAIN}\r\n"
        f"Subject: Undeliverable: {subject_line}\r\n"
        f"Message-ID: {mid}\r\nAuto-Submitted: auto-replied\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"Your message to jan@acme.example couldn't be delivered.\r\nSubject: {subject_line}\r\n"
        f"Quoted: {word}\r\n"
    ).encode()


async def test_a_bounce_naming_the_phone_as_the_gateway_writes_it_for_a_person_is_found(
    tmp_path: Path,
) -> None:
    """An answer mail's subject names the phone as a person writes it ("SMS from +48 601 123 456");
    a bounce of it quotes that subject only. Its forward and its record are the phone's too."""
    from tests.test_bounces import delivered

    relay = free_port()
    path, cfg = named_config(tmp_path, relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        raw = ndr(f"Re: Zebranie (SMS from {SPACED}) {SPACED_WORD}", SPACED_WORD, "<ndr-1@mx.acme.example>")
        assert (await delivered(gw.port, raw, rcpt=f"smsgw@{DOMAIN}")).startswith("250 ")
        await sink.wait(1)
        conn = gw.store.db.conn
        shown = await cli(path, "phone", "show", PHONE)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        left = conn.execute("SELECT content FROM outbox").fetchone()[0]
    assert "mails about it (outbox): 1" in shown.stdout.splitlines(), shown.stdout
    assert forgot.returncode == 0, forgot.stderr
    assert left == ERASED.encode()
    assert SPACED_WORD.encode() not in file_bytes(cfg.db_path)


NOFB_WORD = "Bezodpowiedzi"  # in a bounce to the phone's address, no fallback address to forward it to
AUTO_WORD = "Nieobecnowo"  # in an auto-reply (RFC 3834) to the phone's address, not forwarded
BOTH_WORD = "Obojgowo"  # in an auto-reply naming the phone and another number: theirs too


async def test_the_records_of_bounces_and_auto_replies_to_the_phone_with_no_mail_about_them_are_found(
    tmp_path: Path,
) -> None:
    """With no fallback address a bounce is recorded, never forwarded, and an auto-reply is never
    forwarded: no mail names the phone, only the record (its recipients, its subject). `show` and
    the dry run count them; `forget` erases them, one that names another number too loses only the
    phone's number."""
    from tests.test_bounces import bounce, delivered

    relay = free_port()
    path, cfg = written_two_way(tmp_path, relay)  # no [replies] fallback_address
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        to_phone = bounce("<bounce-nofb@mx.acme.example>", f"Undelivered {NOFB_WORD}")
        assert (await delivered(gw.port, to_phone, rcpt=f"601123456@{DOMAIN}")).startswith("250 ")
        for mid, subject, word in (
            ("<oof-1@acme.example>", f"Re: Zebranie (SMS from {SPACED})", AUTO_WORD),
            ("<oof-2@acme.example>", f"Re: Zebranie (SMS from {PHONE}, {OTHER})", BOTH_WORD),
        ):
            reply = (
                f"From: {STAFF}\r\nTo: {PHONE}@{DOMAIN}\r\nSubject: Automatic reply: {subject}\r\n"
                f"Message-ID: {mid}\r\nAuto-Submitted: auto-replied\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\n\r\nI am away until Monday {word}.\r\n"
            ).encode()
            rcpt = f"{PHONE if word == AUTO_WORD else OTHER}@{DOMAIN}"
            assert (await delivered(gw.port, reply, sender=STAFF, rcpt=rcpt)).startswith("250 ")
        conn = gw.store.db.conn
        recorded = conn.execute("SELECT COUNT(*) FROM emails WHERE automatic IS NOT NULL").fetchone()
        outbox = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
        shown = await cli(path, "phone", "show", PHONE)
        asked = await cli(path, "phone", "forget", PHONE)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        rows = conn.execute("SELECT text, subject, numbers FROM emails").fetchall()
        shown_after = await cli(path, "phone", "show", PHONE)
    assert recorded == (3,) and outbox == (0,)
    line = "records of mails to it or naming it, not sent as SMS (bounces, auto-replies): 3"
    line += " (1 naming other numbers too)"
    assert line in shown.stdout.splitlines(), shown.stdout
    # A database made at schema 54 or later holds no records from before it: no note of them.
    assert "schema version 54" not in shown.stdout + asked.stdout + forgot.stdout, shown.stdout
    assert asked.returncode == 1
    for said in (
        "  2 mails to it alone, not sent as SMS (bounces, out-of-office replies)",
        "  its number in the records of 1 mail not sent as SMS that name other numbers too",
    ):
        assert said in asked.stdout.splitlines(), asked.stdout
    assert forgot.returncode == 0, forgot.stderr
    for said in (
        "  erased: 2 mails to it alone, not sent as SMS (bounces, out-of-office replies)",
        "  erased: its number in the records of 1 mail not sent as SMS that name other numbers too",
    ):
        assert said in forgot.stdout.splitlines(), forgot.stdout
    [(subject, numbers)] = [r[1:] for r in rows if BOTH_WORD in r[0]]
    assert subject == f"Automatic reply: Re: Zebranie (SMS from {ERASED}, {OTHER})" and numbers == OTHER
    assert [r for r in rows if r[0] == ERASED] == [(ERASED, None, None), (ERASED, None, None)]
    assert line.replace("3 (1 naming other numbers too)", "0") in shown_after.stdout.splitlines()
    raw = file_bytes(cfg.db_path)
    assert NOFB_WORD.encode() not in raw and AUTO_WORD.encode() not in raw and BOTH_WORD.encode() in raw


def test_the_records_from_before_schema_54_are_said_only_where_they_may_be(tmp_path: Path) -> None:
    """What `forget` keeps unfound, `show` says too (it counted 0 records of an upgraded install's old
    ones): the records of mails never sent made before migration 54 noted their recipients. A
    database made since has none, and said so on every `phone show` as if it had."""
    path, cfg = written_two_way(tmp_path, free_port())
    with closing(Store.open(cfg.db_path)) as store, store.db.transaction() as conn:
        insert = (
            "INSERT INTO emails (mail_from, text, automatic, received_at, numbers) VALUES (?, ?, ?, ?, ?)"
        )
        conn.execute(insert, ("", "Undelivered", "bounce", time.time(), PHONE))
    unaddressed = "  the records of bounces and auto-replies that do not name the number in their subject or"
    unaddressed += " text and were recorded before the gateway noted their recipients (schema version 54)"
    shown, asked = smsgw(path, "phone", "show", OTHER), smsgw(path, "phone", "forget", OTHER)
    assert shown.returncode == 0 and asked.returncode == 1, shown.stderr + asked.stderr
    assert "schema version 54" not in shown.stdout + asked.stdout, shown.stdout + asked.stdout
    # As an upgraded install holds it: recorded before its recipients were (NULL), and so the oldest.
    with closing(sqlite3.connect(cfg.db_path)) as conn, conn:
        conn.execute("UPDATE emails SET numbers = NULL")
    shown, asked = smsgw(path, "phone", "show", OTHER), smsgw(path, "phone", "forget", OTHER)
    assert f"{unaddressed}: not counted" in shown.stdout.splitlines(), shown.stdout
    kept = f"  kept: {unaddressed.strip()}: nothing ties them to it"
    assert kept in asked.stdout.splitlines(), asked.stdout


async def test_a_queued_bounce_forward_naming_other_numbers_too_loses_only_the_phones_number(
    tmp_path: Path,
) -> None:
    """A bounce quoting a confirmation to the phone and another number, forwarded to the operator's
    fallback mailbox and still queued (the relay is down): erased whole and failed, the mailbox never
    heard of the other number. The phone's number goes from its text, the forward still goes."""
    from email import message_from_bytes, policy

    from tests.test_bounces import delivered

    path, cfg = named_config(tmp_path, free_port())  # nothing listens: the forward stays queued
    async with running_gateway(cfg) as gw:
        raw = ndr(f"Accepted: Zebranie, sent to {PHONE}, {OTHER}", GROUP_WORD, "<ndr-2@mx.acme.example>")
        assert (await delivered(gw.port, raw, rcpt=f"smsgw@{DOMAIN}")).startswith("250 ")
        conn = gw.store.db.conn
        await gw.until(
            lambda: (
                conn.execute("SELECT state, last_error IS NOT NULL FROM outbox").fetchone() == ("queued", 1)
            )
        )
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        state, content = conn.execute("SELECT state, content FROM outbox").fetchone()
    assert forgot.returncode == 0, forgot.stderr
    assert "  erased: its number in 1 outbox mail naming other numbers too" in forgot.stdout.splitlines()
    assert state == "queued"
    msg = message_from_bytes(content, policy=policy.default)
    assert not msg.defects and PHONE not in msg["Subject"] and OTHER in msg["Subject"]
    told = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert PHONE not in told and OTHER in told and ERASED in told
    (original,) = list(msg.iter_attachments())
    quoted = original.get_content()
    assert (
        PHONE not in quoted.as_string() and OTHER in quoted.as_string() and GROUP_WORD in quoted.as_string()
    )
    assert PHONE.encode() not in content


async def one_sms_delivered(gw: Any) -> tuple[str, str]:
    """A mail to the phone, its SMS delivered: the link and SMSC id of its one part."""
    conn = gw.store.db.conn
    assert (await gw.send(mail(f"601123456@{DOMAIN}", "Termin"))).error is None
    await gw.until(lambda: conn.execute("SELECT state FROM messages").fetchone() == ("delivered",))
    link, smsc_id = conn.execute("SELECT link, smsc_id FROM parts").fetchone()
    return link, smsc_id


async def test_a_receipt_never_matched_that_named_another_phone_is_not_the_phones(tmp_path: Path) -> None:
    """The SMSC gave the id of the phone's SMS again to a later SMS to another phone, whose receipt
    came unmatched naming that phone: not the phone's, neither counted nor erased."""
    path, cfg = written_two_way(tmp_path, free_port())
    async with running_gateway(cfg) as gw:
        conn, queue = gw.store.db.conn, gw.store.queue
        link, smsc_id = await one_sms_delivered(gw)
        raw = f"id:{smsc_id} sub:001 dlvrd:001 stat:DELIVRD err:000 text:{OTHER_RECEIPT_WORD}"
        await gw.store.write(lambda: queue.record_report(link, smsc_id, "delivered", None, raw, OTHER))
        shown = await cli(path, "phone", "show", PHONE)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        raws = [r[0] for r in conn.execute("SELECT raw FROM dlrs WHERE part_id IS NULL")]
    assert "delivery reports never matched to an SMS: 0" in shown.stdout.splitlines(), shown.stdout
    assert forgot.returncode == 0, forgot.stderr
    assert raws == [raw]


async def test_the_phones_own_unmatched_receipts_are_erased_however_they_name_it(tmp_path: Path) -> None:
    # Receipts of the phone's own SMS that came after it ended, saying otherwise (unmatched: a repeat
    # of the one that settled it is kept with its part), name the phone as the
    # receipt matcher reads it: our number (source and destination swapped), or the national number
    # labelled international. Compared as written, they kept the SMSC's quote of the text.
    path, cfg = written_two_way(tmp_path, free_port())
    async with running_gateway(cfg) as gw:
        conn, queue = gw.store.db.conn, gw.store.queue
        link, smsc_id = await one_sms_delivered(gw)
        for i, named in enumerate((ACME_SENDER, "+601123456", PHONE, None)):
            raw = f"id:{smsc_id} sub:001 dlvrd:000 stat:UNDELIV err:000 text:{RECEIPT_WORD}{i}"
            await gw.store.write(
                lambda raw=raw, named=named: queue.record_report(link, smsc_id, "failed", None, raw, named)
            )
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        assert forgot.returncode == 0, forgot.stderr
        left = conn.execute("SELECT raw FROM dlrs WHERE part_id IS NULL").fetchall()
    assert len(left) == 4 and not any(RECEIPT_WORD in (raw or "") for (raw,) in left), left


MAILBOX_WORD = "Skrzynkowo"  # in a bounce about someone's mailbox whose name ends in the phone's digits


async def test_a_mailbox_whose_name_ends_in_the_phones_digits_is_not_the_phone(tmp_path: Path) -> None:
    from tests.test_bounces import delivered

    relay = free_port()  # down: the forward stays queued
    path, cfg = named_config(tmp_path, relay)
    raw = (
        f"From: MAILER-DAEMON@mx.acme.example\r\nTo: smsgw@{DOMAIN}\r\nSubject: Undeliverable\r\n"
        "Message-ID: <ndr-mailbox@mx.acme.example>\r\nAuto-Submitted: auto-replied\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Your message to jan.601123456@acme.example and x601123456@acme.example couldn't be"
        f" delivered: mailbox full {MAILBOX_WORD}.\r\n"
    ).encode()
    async with running_gateway(cfg) as gw:
        assert (await delivered(gw.port, raw, rcpt=f"smsgw@{DOMAIN}")).startswith("250 ")
        conn = gw.store.db.conn
        await gw.until(lambda: conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        assert forgot.returncode == 0, forgot.stderr
        [(state, content)] = conn.execute("SELECT state, content FROM outbox").fetchall()
        [(text,)] = conn.execute("SELECT text FROM emails").fetchall()
    assert state in ("queued", "deferred") and MAILBOX_WORD.encode() in bytes(content), state
    assert MAILBOX_WORD in text and ERASED not in text
