"""`smsgw phone forget` while something for or from the phone still waits: refused while an SMS to it
waits to be sent; an answer mail still queued erased and never sent; the waiting parts of a long SMS
from it deleted (a sender ID written as its digits left alone); a premium SMS awaiting its client's
confirmation ended and never mailed. Real peers make the rows, as in test_phone_privacy.py; split
from it by subject."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports.monthly import Month
from gateway.config import Config, parse_config
from gateway.privacy.cli import WAL_KEPT
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_phone_privacy import (
    ACME_SENDER,
    ANSWER_WORD,
    ERASED,
    SENT_WORD,
    WARSAW,
    cli,
    file_bytes,
    written_two_way,
)
from tests.test_two_way import PHONE


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
        # Its first try at the refusing relay may still be under way ('active'): wait for it to be put back.
        await gw.until(lambda: conn.execute("SELECT state FROM outbox").fetchone() == ("queued",))
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
