"""R-2.5 and R-7.3: an accepted mail's audit record (who, from which IP, when, the text, the SMS it
became) is read with `smsgw queue show`, and `smsgw queue list` narrows to a number, a user and a
date. Before, the IP and the text were the panel's or the database's alone, and the list had only
--state and --limit.

A real SMTP client mails the running gateway from the trusted networks, an SMPP fake takes the
SMS (one number fails), and `smsgw` runs as a separate process on the same SQLite file.
"""

from __future__ import annotations

import asyncio
import smtplib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.store.settling import FINAL_PART
from tests.conftest import STAFF, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_bounces import delivered, out_of_office
from tests.test_policy import BETA, to
from tests.test_process import smsgw
from tests.test_quiet_hours_view import written_config

WARSAW = ZoneInfo("Europe/Warsaw")  # the tests' [gateway] timezone
BOB = "bob@beta.example"
BODY = "Meeting moved to 10:00\nRoom 4, second floor\n\n-- \nAnna Nowak\nAcme sp. z o.o.\n"


def data_reply(port: int, msg: Any, rcpts: list[str]) -> str:
    """One SMTP session from the trusted network; the reply to DATA (`queued as N` names the mail)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("mx.acme.example")
        assert c.mail(STAFF)[0] == 250
        for rcpt in rcpts:
            assert c.rcpt(rcpt)[0] == 250, rcpt
        code, text = c.data(msg.as_bytes())
        return f"{code} {text.decode()}"


def local(ts: float) -> str:
    return datetime.fromtimestamp(ts, WARSAW).strftime("%Y-%m-%d %H:%M:%S")


async def settled(gw: Any, email_id: int) -> None:
    """Until every SMS of the mail is final (the failed one's report in too); a hang guard only."""
    store = gw.store
    await gw.until(
        lambda: (
            bool(ms := store.admin.messages_of_email(email_id)) and all(m["state"] in FINAL_PART for m in ms)
        )
    )


async def test_queue_show_prints_the_mails_audit_record_and_each_sms(tmp_path: Path) -> None:
    async with HappySMSC(fail_suffixes=("99",)) as smsc:
        path, cfg = written_config(tmp_path, smsc.port)
        async with running_gateway(cfg) as gw:
            msg = mail([to("601123456"), to("601123499")], BODY, subject="Room change")
            reply = await asyncio.to_thread(
                data_reply, gw.port, msg, [to("601123456"), to("+48 601-123-499")]
            )
            assert "queued as" in reply, reply
            email_id = int(reply.rpartition(" ")[2])
            await settled(gw, email_id)
            conn = gw.store.db.conn
            received = conn.execute("SELECT received_at FROM emails WHERE id = ?", (email_id,)).fetchone()[0]
            (ok_id, smsc_id), (failed_id, _) = conn.execute(
                "SELECT m.id, p.smsc_id FROM messages m JOIN parts p ON p.message_id = m.id"
                " WHERE m.email_id = ? ORDER BY m.recipient",
                (email_id,),
            ).fetchall()
            by_message = await asyncio.to_thread(smsgw, path, "queue", "show", str(failed_id))
            by_mail = await asyncio.to_thread(smsgw, path, "queue", "show", "--mail", str(email_id))
    assert by_message.returncode == 0, by_message.stderr
    assert by_mail.returncode == 0, by_mail.stderr
    assert "times in Europe/Warsaw" in by_message.stderr
    out = by_message.stdout.splitlines()
    for line in (
        f"mail {email_id}",
        f"received: {local(received)}",  # in [gateway] timezone, as the other listings
        f"from: {STAFF}",
        f"user: {STAFF}",
        "account: acme",
        "client-ip: 127.0.0.1",
        "subject: Room change",
        "text:",
        "  Room change: Meeting moved to 10:00",  # the subject before the body, as sent
        "  Room 4, second floor",
        f"sms {ok_id}",
        f"sms {failed_id}  (the message asked for)",
        "to: +48601123456",
        "to: +48601123499",
        "state: delivered",
        "state: failed",
        "parts: 1",
        "sms-text: the mail's text",
    ):
        assert line in out, (line, by_message.stdout)
    assert any(line.startswith("removed: ") and "signature" in line for line in out), by_message.stdout
    assert "  Anna Nowak" not in out  # the text as accepted: the signature is not in it
    # Each SMS with its SMSC message id and the report that ended it.
    assert any(line.startswith("part 1: delivered") and f"SMSC id {smsc_id}" in line for line in out), out
    assert any(line.startswith("report: ") and " part 1 delivered " in line for line in out), out
    assert any(line.startswith("report: ") and "failed" in line and "UNDELIV" in line for line in out), out
    assert any(
        line.startswith("reason: ") for line in out[out.index(f"sms {failed_id}  (the message asked for)") :]
    )
    # The same record by the mail's id, none of its SMS singled out.
    assert by_mail.stdout.replace("  (the message asked for)", "") == by_message.stdout.replace(
        "  (the message asked for)", ""
    )
    assert "(the message asked for)" not in by_mail.stdout


def dsn_reply(port: int, msg: Any) -> str:
    """A relaying MTA's transaction with SMTP DSN requests (RFC 3461) for two numbers, one of them
    asking for no notices at all; the reply to DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("mx.acme.example")
        assert c.mail(STAFF, ["RET=HDRS", "ENVID=QQ314159"])[0] == 250
        assert (
            c.rcpt(to("601123456"), ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;anna@crm.acme.example"])[0]
            == 250
        )
        assert c.rcpt(to("601123457"), ["NOTIFY=NEVER"])[0] == 250
        code, text = c.data(msg.as_bytes())
        return f"{code} {text.decode()}"


async def test_queue_show_says_what_the_mail_program_asked_to_be_told(tmp_path: Path) -> None:
    """A user asks "why did I get no bounce for that number": the mail program's NOTIFY=NEVER
    overrode the account's dlr_mail, and only the database knew it."""
    async with HappySMSC() as smsc:
        path, cfg = written_config(tmp_path, smsc.port)
        async with running_gateway(cfg) as gw:
            msg = mail([to("601123456"), to("601123457")], "Meeting at 10", subject="Room")
            reply = await asyncio.to_thread(dsn_reply, gw.port, msg)
            assert "queued as" in reply, reply
            email_id = int(reply.rpartition(" ")[2])
            await settled(gw, email_id)
            shown = await asyncio.to_thread(smsgw, path, "queue", "show", "--mail", str(email_id))
            plain = await asyncio.to_thread(data_reply, gw.port, msg, [to("601123456")])
            plain_shown = await asyncio.to_thread(
                smsgw, path, "queue", "show", "--mail", plain.rpartition(" ")[2]
            )
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout.splitlines()
    assert "dsn: envelope id QQ314159, notices return the headers only" in out, out
    assert "notices-asked: success, failure (the mail program's NOTIFY)" in out, out
    assert "original-recipient: rfc822;anna@crm.acme.example" in out, out
    assert "notices-asked: none (the mail program asked NOTIFY=NEVER)" in out, out
    assert not any(
        line.startswith(("dsn:", "notices-asked:", "original-")) for line in plain_shown.stdout.splitlines()
    )


async def test_queue_show_of_recorded_mail_and_of_unknown_ids(tmp_path: Path) -> None:
    path, cfg = written_config(tmp_path, 1)
    async with running_gateway(cfg) as gw:
        said = await delivered(gw.port, out_of_office(), sender=STAFF)
        assert said.startswith("250 2.0.0 OK: recorded"), said
        (email_id,) = gw.store.db.conn.execute("SELECT MAX(id) FROM emails").fetchone()
        recorded = await asyncio.to_thread(smsgw, path, "queue", "show", "--mail", str(email_id))
        no_message = await asyncio.to_thread(smsgw, path, "queue", "show", "4242")
        no_mail = await asyncio.to_thread(smsgw, path, "queue", "show", "--mail", "4242")
        retry = await asyncio.to_thread(smsgw, path, "queue", "retry", "4242")
    assert recorded.returncode == 0, recorded.stderr
    out = recorded.stdout.splitlines()
    assert "client-ip: 127.0.0.1" in out and "sms: none" in out, out
    assert any(line.startswith("recorded, not sent as SMS: out-of-office") for line in out), out
    # Not found: exit 1 with the id named, as `queue retry` of an unknown id.
    assert retry.returncode == 1
    assert (no_message.returncode, no_mail.returncode) == (1, 1)
    assert no_message.stdout == no_mail.stdout == ""
    assert "no message with id 4242" in no_message.stderr
    assert "no mail with id 4242" in no_mail.stderr


async def test_queue_list_filters_by_number_user_and_date(tmp_path: Path) -> None:
    async with HappySMSC() as smsc:
        path, cfg = written_config(tmp_path, smsc.port, extra=BETA)
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(to("601123456"), "For Anna's phone"))).error is None
            bobs = mail(to("601123457"), "From Bob")
            bobs.replace_header("From", BOB)
            assert (await gw.send(bobs, sender=BOB, source="127.0.0.2")).error is None

            # The days the messages were made on, not the test's clock: a run across midnight stays right.
            first, last = gw.store.db.conn.execute(
                "SELECT MIN(created_at), MAX(created_at) FROM messages"
            ).fetchone()

            def listing(*args: str) -> Any:
                return smsgw(path, "queue", "list", *args)

            runs = {
                name: await asyncio.to_thread(listing, *args)
                for name, args in {
                    "all": (),
                    "number": ("--number", "0048 601-123-456"),
                    "quoted": ("--number", '"601 123 457"@sms.example.com'),
                    "user": ("--user", BOB.upper()),
                    "both": ("--user", STAFF, "--number", "601123457"),
                    "today": ("--since", f"{datetime.fromtimestamp(first, WARSAW):%Y-%m-%d}"),
                    "tomorrow": (
                        "--since",
                        f"{datetime.fromtimestamp(last, WARSAW) + timedelta(days=1):%Y-%m-%d}",
                    ),
                    "hour": ("--since", "1h"),
                    "bad-number": ("--number", "12ab"),
                    "bad-date": ("--since", "last tuesday"),
                }.items()
            }
    for name in ("all", "number", "quoted", "user", "both", "today", "tomorrow", "hour"):
        assert runs[name].returncode == 0, (name, runs[name].stderr)
    lines = {name: run.stdout.splitlines() for name, run in runs.items()}
    assert len(lines["all"]) == 2
    [anna] = [line for line in lines["all"] if "+48601123456" in line]
    [bob] = [line for line in lines["all"] if "+48601123457" in line]
    assert lines["number"] == [anna]
    assert lines["quoted"] == [bob]
    assert lines["user"] == [bob]
    assert lines["both"] == ["no messages matching the filters"]
    assert lines["today"] == lines["hour"] == lines["all"]
    assert lines["tomorrow"] == ["no messages matching the filters"]
    assert runs["bad-number"].returncode == runs["bad-date"].returncode == 2
    assert "--number '12ab'" in runs["bad-number"].stderr
    assert "--since 'last tuesday'" in runs["bad-date"].stderr
