"""Alerts from monitoring systems (R-1.7): cron puts `Auto-Submitted: auto-generated` on every mail,
so a failed backup's alert was recorded, not sent, and nobody heard of it. An account for machines
may have such mail sent (`account set --auto-generated send`); auto-replies, reports, bounces,
recalls and the gateway's own mails stay unsent even then. Without the setting the `250` names it.

And the notices about a mail's SMS go where its bounces go: the account's `--notify-address`.

A real gateway on 127.0.0.1 with an SMPP simulator; mail through a real SMTP client; the panel
through its ASGI client; the CLI through its entry point."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.smtp import replies
from gateway.web.app import WebContext
from tests.conftest import DOMAIN, STAFF, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.web_helpers import ADMIN, as_user, csrf_of
from tests.web_helpers import web as web  # the fixture

NOT_SENT = replies.OK_NOT_SENT.split("(")[0].removeprefix("250 ")  # "2.0.0 OK: recorded, not sent as SMS "
NOC = "noc@acme.example"


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


def data_reply(
    port: int, msg: EmailMessage | bytes, rcpts: list[str], sender: str = STAFF
) -> tuple[int, str]:
    """The server's answer to DATA, text included: what a monitoring system's MTA logs."""
    raw = msg if isinstance(msg, bytes) else msg.as_bytes()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail(sender)
        for rcpt in rcpts:
            client.rcpt(rcpt)
        code, text = client.data(raw)
        return code, text.decode()


def cron(number: str, body: str = "backup.sh: /srv: No space left on device") -> EmailMessage:
    """As cronie sends a job's output."""
    msg = mail(to(number), body, subject="Cron <root@backup> /usr/local/bin/backup.sh")
    msg.replace_header("From", '"(Cron Daemon)" <root@backup.acme.example>')
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Cron-Env"] = "<SHELL=/bin/sh>"
    return msg


def report(number: str, kind: str) -> bytes:
    """A delivery or read report (RFC 3464 / 8098), marked as a program's."""
    return (
        f"From: Mail Delivery System <postmaster@acme.example>\nTo: {to(number)}\n"
        f"Subject: Report {kind}\nAuto-Submitted: auto-generated\nMIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={kind}; boundary="b"\n\n'
        f"--b\nContent-Type: text/plain\n\nA report about {kind}\n--b--\n"
    ).encode()


async def test_without_the_setting_an_alert_is_recorded_and_its_250_names_the_setting(tmp_path: Path) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        code, text = await asyncio.to_thread(data_reply, gw.port, cron("601123456"), [to("601123456")])
        assert code == 250
        assert text == (
            f"{NOT_SENT}(Auto-Submitted: auto-generated; an account for alerts:"
            " smsgw account set acme --auto-generated send)"
        )
        # An auto-reply is no alert: no setting sends it, so none is named.
        replied = mail(to("601123457"), "I am away", Auto_Submitted="auto-replied")
        code, text = await asyncio.to_thread(data_reply, gw.port, replied, [to("601123457")])
        assert (code, text) == (250, f"{NOT_SENT}(Auto-Submitted: auto-replied)")
        await gw.send(mail(to("601123458"), "Marker"))
        await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received))
        assert [s.text for s in smsc.received] == ["Marker"]


async def test_an_account_for_alerts_sends_them_and_never_auto_replies_reports_or_its_own_mail(
    tmp_path: Path,
) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        # A phone's answer, mailed by the gateway to the user: it carries Auto-Submitted too.
        assert (await gw.send(mail(to("601123450"), "Disk full on backup", subject="Alert"))).error is None
        await smsc.wait_for(1)
        assert await smsc.inject_mo("+48601123450", "+48100200300", "On it, restarting") >= 1
        query = "SELECT content FROM outbox WHERE kind = 'reply'"
        await gw.until(lambda: gw.store.db.conn.execute(query).fetchone() is not None)
        (answer,) = gw.store.db.conn.execute(query).fetchone()
        assert b"Auto-Submitted: auto-generated" in answer

        await gw.store.write(lambda: gw.store.accounts.update_account("acme", auto_generated="send"))
        sent = {
            "601123451": cron("601123451"),
            "601123452": mail(to("601123452"), "[FIRING:1] BackupFailed", Precedence="list"),
            "601123453": mail(to("601123453"), "UPS on battery", Auto_Submitted="auto-notified"),
        }
        for number, msg in sent.items():
            code, text = await asyncio.to_thread(data_reply, gw.port, msg, [to(number)])
            assert code == 250 and "not sent" not in text, (number, text)

        away = mail(to("601123461"), "I am away until Monday", subject="Automatic reply: Backup")
        away["Auto-Submitted"] = "auto-generated"
        responder = mail(to("601123462"), "Thanks, we got your mail", Auto_Submitted="auto-generated")
        responder["X-Autoreply"] = "yes"  # the first sign alone named an alert's
        daemon = mail(to("601123463"), "Your message could not be delivered", Auto_Submitted="auto-generated")
        daemon.replace_header("From", "MAILER-DAEMON@acme.example")
        recall = mail(
            to("601123464"), "Anna would like to recall the message, 'Backup'.", subject="Recall: Backup"
        )
        recall["Auto-Submitted"] = "auto-generated"
        never: dict[str, tuple[EmailMessage | bytes, str]] = {
            "601123460": (mail(to("601123460"), "Out of office", Auto_Submitted="auto-replied"), STAFF),
            "601123461": (away, STAFF),
            "601123462": (responder, STAFF),
            "601123463": (daemon, STAFF),
            "601123464": (recall, STAFF),
            "601123465": (report("601123465", "delivery-status"), STAFF),
            "601123466": (report("601123466", "disposition-notification"), STAFF),
            "601123467": (cron("601123467"), ""),  # a bounce: the empty envelope sender
            # A mail rule that sends the user's mail on to a phone sends the answer back: a loop.
            "601123450": (answer, STAFF),
        }
        for number, (msg, sender) in never.items():
            code, text = await asyncio.to_thread(data_reply, gw.port, msg, [to(number)], sender)
            assert code == 250 and text.startswith(NOT_SENT), (number, text)

        await gw.send(mail(to("601123499"), "Marker"))
        await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received))
        got = sorted(s.destination.lstrip("+") for s in smsc.received[1:-1])
        assert got == sorted(f"48{n}" for n in sent)


async def test_notices_about_a_mails_sms_go_to_the_notify_address(tmp_path: Path) -> None:
    # A group alert where one number had its three identical SMS today: "Not sent as SMS to +48…"
    # went to alertmanager@…, which nobody reads, though the account named its address for bounces.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.store.write(
            lambda: gw.store.accounts.update_account("acme", notify_address=NOC, confirm=True)
        )
        alert = "[FIRING:1] BackupFailed on backup-1"
        for i in range(3):
            msg = mail(to("601123456"), alert, Message_ID=f"<alert-{i}@mon.example.com>")
            assert (await gw.send(msg)).error is None
        group = [to("601123456"), to("601123457")]
        assert (await gw.send(mail(group, alert), group)).error is None
        await smsc.wait_for(4)
        told = gw.store.db.conn.execute("SELECT kind, rcpt FROM outbox ORDER BY id").fetchall()
        assert ("not-sent", NOC) in told
        assert {rcpt for _, rcpt in told} == {NOC}, told


def test_the_cli_sets_and_shows_the_setting(cli: Any) -> None:
    assert cli("account", "add", "mon")[0] == 0
    assert "auto-generated: record" in cli("account", "show", "mon")[1]
    assert cli("account", "set", "mon", "--auto-generated", "send")[0] == 0
    assert "auto-generated: send" in cli("account", "show", "mon")[1]
    assert cli("account", "set", "mon", "--auto-generated", "record")[0] == 0
    assert "auto-generated: record" in cli("account", "show", "mon")[1]


async def test_the_panel_sets_the_setting(web: WebContext) -> None:
    form = {"split_mode": "concatenated", "dlr_mail": "failed", "overflow": "truncate"}
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/account")).text
        assert 'name="auto_generated" id="auto-generated">' in page  # off by default
        r = await c.post("/account", data={**form, "csrf": csrf_of(page), "auto_generated": "on"})
        assert r.status_code == 303, r.text
        assert web.store.accounts.get_account("acme").auto_generated == "send"
        assert 'id="auto-generated" checked' in (await c.get("/account")).text
        r = await c.post("/account", data={**form, "csrf": csrf_of(page)})
        assert r.status_code == 303
        assert web.store.accounts.get_account("acme").auto_generated == "record"


HOST = "gw.acme.example"  # [gateway] hostname: where the ids of the gateway's notices end


def exchange_away(number: str, subject: str, in_reply_to: str) -> EmailMessage:
    """An Exchange Online out-of-office reply, as its headers come: Auto-Submitted like cron's."""
    msg = mail(to(number), "Je suis absent jusqu'au 12/12.", subject=subject)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-MS-Exchange-Inbox-Rules-Loop"] = STAFF
    msg["In-Reply-To"] = in_reply_to
    return msg


def enclosing(number: str, sender: str, outer: str, inner: str) -> bytes:
    """A mail that carries another as an attachment (message/rfc822): a rule's "forward as
    attachment", a mailing list's wrapping."""
    return (
        f"From: {sender}\r\nTo: {to(number)}\r\nSubject: FW: Disk full\r\n{outer}MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: message/rfc822\r\n\r\n{inner}--b--\r\n"
    ).encode()


def no_alerts(own: str) -> dict[str, EmailMessage | bytes]:
    """Automatic mail that carries only an alert's signs in the headers cron's rules read, but that
    a responder, a mail rule or a list made of the gateway's own mail."""
    notice = (
        f"From: SMS gateway <{own}>\r\nTo: {STAFF}\r\nSubject: SMS delivered to +48601123456\r\n"
        f"Auto-Submitted: auto-replied\r\nMessage-ID: <1.2@{HOST}>\r\n\r\nYour SMS was delivered.\r\n"
    )
    answer = (
        f'From: "+48601123499" <+48601123499@{DOMAIN}>\r\nSubject: Re: Disk full\r\n'
        f"Auto-Submitted: auto-generated\r\nMessage-ID: <y.sms-reply@{DOMAIN}>\r\n\r\nOK, on it\r\n"
    )
    # A ticket system's acknowledgement of a notice: no Exchange header, only its In-Reply-To.
    ticket = mail(to("601123474"), "Ticket #4411 opened", subject="[#4411] SMS delivered")
    ticket["Auto-Submitted"] = "auto-generated"
    ticket["In-Reply-To"] = f"<17.2@{HOST}>"
    acked = mail(to("601123475"), "Your mail was received", subject="Received: Disk full")
    acked["Auto-Submitted"] = "auto-generated"
    acked["References"] = f"<a@mon.example.com> <y.sms-reply@{DOMAIN.upper()}>"
    return {
        # Subjects in languages the out-of-office patterns do not know: the Exchange headers tell.
        "601123470": exchange_away("601123470", "Automatiskt svar: Disk full", "<a@mon.example.com>"),
        "601123471": exchange_away("601123471", "Réponse automatique : Disk full", f"<x.sms-reply@{DOMAIN}>"),
        "601123472": enclosing("601123472", STAFF, "Auto-Submitted: auto-generated\r\n", notice),
        "601123473": enclosing(
            "601123473",
            "Ops <ops@acme.example>",
            "Precedence: list\r\nList-Id: <ops.acme.example>\r\n",
            answer,
        ),
        "601123474": ticket,
        "601123475": acked,
    }


async def test_auto_replies_and_the_gateways_own_mail_in_any_wrapping_are_no_alerts(tmp_path: Path) -> None:
    # An account for alerts sent a staff member's French out-of-office reply to an answer mail back
    # to the phone, and a delivery notice forwarded as an attachment became an SMS (with
    # dlr_mail = all, a loop). Without the setting, the 250 named it as if it would send them.
    async with HappySMSC() as smsc:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port, hostname=HOST)) as gw:
            cases = no_alerts(gw.config.mail.from_address)
            for number, msg in cases.items():
                code, text = await asyncio.to_thread(data_reply, gw.port, msg, [to(number)])
                assert code == 250 and text.startswith(NOT_SENT), (number, text)
                assert "--auto-generated" not in text, (number, text)
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", auto_generated="send"))
            for number, msg in cases.items():
                code, text = await asyncio.to_thread(data_reply, gw.port, msg, [to(number)])
                assert code == 250 and text.startswith(NOT_SENT), (number, text)
                # Its first sign is one the account takes: the reply says why it was not sent.
                assert "not an alert" in text or "Auto-Submitted" not in text, (number, text)
            # An alert is still one: cron's, and Alertmanager's through a list.
            assert (await gw.send(cron("601123480"))).error is None
            assert (
                await gw.send(mail(to("601123481"), "[FIRING:1] DiskFull", Precedence="list"))
            ).error is None
            await gw.send(mail(to("601123499"), "Marker"))
            await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received))
            got = sorted(s.destination for s in smsc.received)
            assert got == ["+48601123480", "+48601123481", "+48601123499"]


async def test_a_guessed_out_of_office_is_told_to_its_writer_not_the_notify_address(tmp_path: Path) -> None:
    # "Nieobecność jutro" from Outlook (X-Auto-Response-Suppress on every mail) is only guessed to be
    # a responder's: the notice exists to tell the person who may have written it. It went to the
    # account's notify address, and the writer believed their SMS sent.
    relay = free_port()
    async with (
        HappySMSC() as smsc,
        smtp_sink(relay) as sink,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, relay_port=relay)) as gw,
    ):
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", notify_address=NOC))
        msg = mail(to("601123456"), "Jutro mnie nie ma, dzwoń do Kasi.", subject="Nieobecność jutro")
        msg["X-Auto-Response-Suppress"] = "All"
        assert (await gw.send(msg)).error is None
        await sink.wait(1)
        ((_from, rcpts, content),) = sink.messages
        assert rcpts == [STAFF]
        assert b"Not_sent_as_SMS" in content
        assert smsc.received == []
        told = gw.store.db.conn.execute("SELECT kind, rcpt FROM outbox").fetchall()
        assert told == [("not-sent", STAFF)]


@pytest.mark.parametrize(
    "header", [("X-Auto-Response-Suppress", "All"), ("X-MS-Exchange-Inbox-Rules-Loop", STAFF)]
)
async def test_an_alert_forwarded_by_an_exchange_rule_or_from_gitlab_is_sent(
    tmp_path: Path, header: tuple[str, str]
) -> None:
    # GitLab, Redmine and Outlook write X-Auto-Response-Suppress on every mail, and an Exchange inbox
    # rule forwarding a monitoring mailbox to 601…@gateway adds its loop header: alone, with nothing
    # answered (no In-Reply-To), they are no responder's, and such alerts were recorded unsent.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", auto_generated="send"))
        alert = cron("601123451")
        alert[header[0]] = header[1]
        code, text = await asyncio.to_thread(data_reply, gw.port, alert, [to("601123451")])
        assert code == 250 and "not sent" not in text, text
        await smsc.wait_for(1)


async def test_an_exchange_responder_that_names_no_mail_it_answers_is_no_alert(tmp_path: Path) -> None:
    # Both Exchange marks together are a responder's (a reply-with-template rule writes no
    # In-Reply-To): once either alone stopped counting, such a reply reached the phone.
    async with HappySMSC() as smsc:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port, hostname=HOST)) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", auto_generated="send"))
            oof = exchange_away("601123470", "Automatiskt svar: Disk full", "<a@mon.example.com>")
            del oof["In-Reply-To"]
            code, text = await asyncio.to_thread(data_reply, gw.port, oof, [to("601123470")])
            assert code == 250 and text.startswith(NOT_SENT), text
