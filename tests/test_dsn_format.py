"""Our bounces as a bounce processor reads them (RFC 3464, 3462, 3463).

A real SMTP client mails the running gateway, an SMSC over TCP refuses the number or reports it
undelivered, and the bounce is caught at a real SMTP sink and parsed with the email package. The
sender's software matches a bounce to its own mail by Final-Recipient, so that is the RCPT address
as it sent it (`601120000@…`, not our E.164 form); Status says 5.1.1 when the operator refused the
number itself; the Diagnostic-Code's type is an X- token; the original's headers name the address.
Rows stored before the address was kept bounce as they always did.
"""

from __future__ import annotations

import asyncio
import sqlite3
from email.message import EmailMessage, Message
from pathlib import Path

from tests.conftest import (
    DOMAIN,
    STAFF,
    free_port,
    mail,
    make_config,
    running_gateway,
    send_blocking,
    smtp_sink,
)
from tests.fakes.smsc import HappySMSC
from tests.test_intake_workers import stop, worker_config
from tests.test_process import start_daemon
from tests.test_two_way import parsed, two_way_config

REFUSED = f"601120000@{DOMAIN}"  # refused at submit: reject_suffixes "0000" (the simulator's default too)
UNDELIVERED = f"601123413@{DOMAIN}"  # a failed receipt: fail_suffixes "13"


def report_of(content: bytes) -> tuple[Message, EmailMessage]:
    """A bounce's per-recipient fields and its text/rfc822-headers part read as headers."""
    report = parsed(content)
    assert report.get_content_type() == "multipart/report"
    (status,) = [p for p in report.walk() if p.get_content_type() == "message/delivery-status"]
    _per_message, per_recipient = status.get_payload()
    (headers,) = [p for p in report.walk() if p.get_content_type() == "text/rfc822-headers"]
    return per_recipient, parsed(headers.get_content().encode())


async def bounce_of(tmp_path: Path, rcpts: list[str], **smsc: list[str]) -> list[bytes]:
    """The bounces one mail to `rcpts` brings from a fake SMPP SMSC (ESME_RINVDSTADR for a refusal)."""
    sink_port = free_port()
    async with HappySMSC(**smsc) as fake, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=fake.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            res = await gw.send(mail(rcpts, "Your visit is at 10:00", "Visit"), rcpts)
            assert res.error is None and res.refused == {}
            await sink.wait(1)
            await gw.until(lambda: gw.states() == ["failed"])
    return [content for _from, _rcpts, content in sink.messages]


async def test_a_refused_number_bounces_as_5_1_1_with_an_x_smsc_diagnostic(tmp_path: Path) -> None:
    # RFC 3463 X.1.1 "bad destination mailbox address": a bounce processor stops mailing it.
    (content,) = await bounce_of(tmp_path, [REFUSED], reject_suffixes=["0000"])
    fields, _original = report_of(content)
    assert fields["Action"] == "failed" and fields["Status"] == "5.1.1"
    # RFC 3464 2.3.6: a registered diagnostic type (smtp) or an X- token.
    assert str(fields["Diagnostic-Code"]) == "X-SMSC; ESME_RINVDSTADR (0x0B)"


async def test_an_undelivered_receipt_bounces_as_5_0_0(tmp_path: Path) -> None:
    # The phone was not reached: nothing says the number is bad, so no X.1.1.
    (content,) = await bounce_of(tmp_path, [UNDELIVERED], fail_suffixes=["13"])
    fields, _original = report_of(content)
    assert fields["Status"] == "5.0.0"
    assert str(fields["Diagnostic-Code"]).startswith("X-SMSC; UNDELIV")


async def test_a_cimd2_refusal_of_the_number_bounces_as_5_1_1(tmp_path: Path) -> None:
    # The built-in simulator over CIMD2 answers error 900:300, incorrect destination address.
    sink_port = free_port()
    async with smtp_sink(sink_port) as sink:
        async with running_gateway(two_way_config(tmp_path, "cimd2", relay_port=sink_port)) as gw:
            assert (await gw.send(mail(REFUSED, "Your visit is at 10:00"))).error is None
            await sink.wait(1)
    fields, _original = report_of(sink.messages[0][2])
    assert fields["Status"] == "5.1.1"
    assert str(fields["Diagnostic-Code"]).startswith("X-SMSC; CIMD2 900:300 ")


async def test_final_recipient_is_the_rcpt_address_as_sent(tmp_path: Path) -> None:
    # RFC 3464 2.3.2: the address the MTA accepted. A CRM that mailed 601120000@… could not match
    # `+48601120000@…` to its mail; RFC 3462: the original's headers name that address as well.
    (content,) = await bounce_of(tmp_path, [REFUSED], reject_suffixes=["0000"])
    fields, original = report_of(content)
    assert fields["Final-Recipient"] == f"rfc822; {REFUSED}"
    assert original["To"] == REFUSED and original["From"] == STAFF
    assert "+48601120000" in str(parsed(content)["Subject"])  # the person still reads the number


async def test_one_number_named_twice_bounces_under_the_first_address(tmp_path: Path) -> None:
    # Two forms of one number make one SMS (dedup by the E.164 number); its bounce names the
    # address the mail named it by first.
    both = [REFUSED, f"+48601120000@{DOMAIN}"]
    (content,) = await bounce_of(tmp_path, both, reject_suffixes=["0000"])
    fields, original = report_of(content)
    assert fields["Final-Recipient"] == f"rfc822; {REFUSED}" and original["To"] == REFUSED


async def test_mail_through_an_intake_worker_keeps_its_rcpt_address(tmp_path: Path) -> None:
    # The shipped config takes mail in worker processes: the address crosses to the daemon with the
    # rest of the acceptance.
    smtp_port, sink_port = free_port(), free_port()
    async with HappySMSC(reject_suffixes=["0000"]) as fake, smtp_sink(sink_port) as sink:
        proc = await start_daemon(
            worker_config(tmp_path, fake.port, smtp_port, 1, relay_port=sink_port), smtp_port
        )
        try:
            res = await asyncio.to_thread(send_blocking, smtp_port, mail(REFUSED, "Via a worker"), [REFUSED])
            assert res.error is None
            await sink.wait(1)
        finally:
            await stop(proc)
    fields, _original = report_of(sink.messages[0][2])
    assert fields["Final-Recipient"] == f"rfc822; {REFUSED}" and fields["Status"] == "5.1.1"


async def test_a_message_stored_before_migration_24_bounces_under_its_number(tmp_path: Path) -> None:
    # Taken while no SMSC answered, by a gateway whose schema had no RCPT address; refused after the
    # upgrade. The migration leaves the old row without one: its bounce names the number, as before.
    from tests.test_store import undo_migration_24  # here: a checkout before it still runs the rest

    sink_port, smsc_port = free_port(), free_port()
    cfg = make_config(tmp_path, smsc_port=smsc_port, relay_port=sink_port)
    async with running_gateway(cfg) as gw:
        assert (await gw.send(mail(REFUSED, "Taken before the upgrade"))).error is None
        db = gw.store.db.path
    with sqlite3.connect(db) as conn:
        undo_migration_24(conn)
        conn.execute("UPDATE schema_version SET version = 23")
    conn.close()
    async with HappySMSC(port=smsc_port, reject_suffixes=["0000"]), smtp_sink(sink_port) as sink:
        async with running_gateway(cfg) as gw:
            await sink.wait(1)
            assert gw.store.db.conn.execute("SELECT rcpt FROM messages").fetchall() == [(None,)]
    fields, original = report_of(sink.messages[0][2])
    assert fields["Final-Recipient"] == f"rfc822; +48601120000@{DOMAIN}" and fields["Status"] == "5.1.1"
    assert original["To"] == f"+48601120000@{DOMAIN}"
