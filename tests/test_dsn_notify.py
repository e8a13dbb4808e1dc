"""Delivery receipts per recipient as mail programs ask for them: SMTP DSN (RFC 3461).

Outlook's "Request a delivery receipt" or a company MTA relaying it sends `NOTIFY=SUCCESS,FAILURE
ORCPT=…` at RCPT and `RET=HDRS ENVID=…` at MAIL, only to a server whose EHLO lists DSN. A real
smtplib client talks to the running daemon, a fake SMPP SMSC over TCP delivers every number but
those ending in 13 (which it reports failed), and a real SMTP sink catches what the gateway mails
out. The account keeps the default `dlr_mail = failed` throughout.
"""

from __future__ import annotations

import asyncio
import smtplib
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

from tests.conftest import DOMAIN, STAFF, Sink, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import FakeSMSC

DELIVERS = f"601123456@{DOMAIN}"
DELIVERS_TOO = f"601123457@{DOMAIN}"
FAILS = f"601123413@{DOMAIN}"
FAILS_TOO = f"601123513@{DOMAIN}"


def transaction(
    port: int, mail_options: list[str], rcpts: list[tuple[str, list[str]]], body: bytes
) -> dict[str, tuple[int, bytes]]:
    """One mail with per-recipient parameters, as a relaying MTA sends it; every reply by step."""
    said: dict[str, tuple[int, bytes]] = {}
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mx.acme.example")
        said["MAIL"] = client.mail(STAFF, mail_options)
        for rcpt, options in rcpts:
            said[rcpt] = client.rcpt(rcpt, options)
        if any(code == 250 for step, (code, _) in said.items() if step != "MAIL"):
            said["DATA"] = client.data(body)
        else:
            client.rset()
    return said


def body(text: str = "Meeting at 10") -> bytes:
    return mail(DELIVERS, text, subject="Meeting").as_bytes()


def outbound(sink: Sink) -> list[EmailMessage]:
    mails = []
    for _, _, raw in sink.messages:
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        mails.append(msg)
    return mails


def report_fields(dsn: EmailMessage) -> tuple[Message, Message]:
    """The per-message and per-recipient blocks of a bounce's message/delivery-status part."""
    (status,) = [p for p in dsn.walk() if p.get_content_type() == "message/delivery-status"]
    per_message, per_recipient = status.get_payload()
    return per_message, per_recipient


async def settled(gw: Any, n: int) -> None:
    await gw.until(lambda: len([s for s in gw.states() if s in ("delivered", "failed")]) == n)


async def test_ehlo_lists_dsn_on_both_ports(tmp_path: Path) -> None:
    async with FakeSMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg) as gw:

            def keywords(port: int) -> set[str]:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                    client.ehlo("mx.acme.example")
                    return set(client.esmtp_features)

            assert "dsn" in await asyncio.to_thread(keywords, gw.port)
            assert "dsn" in await asyncio.to_thread(keywords, gw.daemon.submission_port)


async def test_notify_success_gets_a_delivered_notice_though_the_account_wants_failures_only(
    tmp_path: Path,
) -> None:
    sink_port = free_port()
    async with FakeSMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            rcpts = [(DELIVERS, ["NOTIFY=SUCCESS,FAILURE"]), (DELIVERS_TOO, [])]
            said = await asyncio.to_thread(transaction, gw.port, [], rcpts, body())
            assert said["DATA"][0] == 250, said
            await settled(gw, 2)
            await sink.wait(1)
            await asyncio.sleep(0.5)  # a notice for the other number would be queued by now
            (notice,) = outbound(sink)
            assert str(notice["Subject"]) == "SMS delivered to +48601123456"
            assert sink.messages[0][1] == [STAFF]
            asked = gw.store.db.conn.execute("SELECT recipient, notify FROM messages ORDER BY id").fetchall()
            assert asked == [("+48601123456", "success,failure"), ("+48601123457", None)]


async def test_notify_never_gets_no_bounce_yet_the_failure_is_recorded(tmp_path: Path) -> None:
    sink_port = free_port()
    async with FakeSMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            rcpts = [(FAILS, ["NOTIFY=NEVER"]), (FAILS_TOO, [])]
            said = await asyncio.to_thread(transaction, gw.port, [], rcpts, body())
            assert said["DATA"][0] == 250, said
            await settled(gw, 2)
            await sink.wait(1)
            await asyncio.sleep(0.5)
            (bounce,) = outbound(sink)
            assert str(bounce["Subject"]) == "Undelivered SMS to +48601123513"  # the one that asked nothing
            assert gw.states() == ["failed", "failed"]
            assert gw.store.admin.message_info(1)["notify"] == "never"
            assert gw.store.admin.message_info(1)["reason"]  # shown in the queue list as any failure


async def test_bounce_carries_original_recipient_and_envelope_id_and_only_headers(tmp_path: Path) -> None:
    sink_port = free_port()
    async with FakeSMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            orcpt = "ORCPT=rfc822;Jan+2BKowalski@crm.acme.example"  # xtext: "+" as +2B, case kept
            rcpts = [(FAILS, ["NOTIFY=FAILURE", orcpt])]
            options = ["RET=HDRS", "ENVID=QQ314159+2Bx"]
            said = await asyncio.to_thread(
                transaction, gw.port, options, rcpts, body("Secret door code XYLOFON")
            )
            assert said["MAIL"][0] == 250 and said["DATA"][0] == 250, said
            await sink.wait(1)
            (bounce,) = outbound(sink)
            per_message, per_recipient = report_fields(bounce)
            assert per_message["Original-Envelope-Id"] == "QQ314159+x"
            assert per_recipient["Original-Recipient"] == "rfc822; Jan+Kowalski@crm.acme.example"
            assert per_recipient["Final-Recipient"] == f"rfc822; {FAILS}"
            assert b"XYLOFON" not in sink.messages[0][2]  # RET=HDRS: the content is not returned
            assert "Subject: Meeting" in str(bounce)


async def test_a_failure_without_ret_hdrs_still_quotes_the_text(tmp_path: Path) -> None:
    sink_port = free_port()
    async with FakeSMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            rcpts = [(FAILS, ["NOTIFY=FAILURE"])]
            said = await asyncio.to_thread(
                transaction, gw.port, ["RET=FULL"], rcpts, body("Door code XYLOFON")
            )
            assert said["DATA"][0] == 250, said
            await sink.wait(1)
            (bounce,) = outbound(sink)
            assert "XYLOFON" in bounce.get_body(("plain",)).get_content()
            per_message, per_recipient = report_fields(bounce)
            assert per_message["Original-Envelope-Id"] is None
            assert per_recipient["Original-Recipient"] is None


async def test_malformed_dsn_parameters_are_refused_naming_them(tmp_path: Path) -> None:
    async with FakeSMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg) as gw:
            bad_rcpt = ["NOTIFY=NEVER,SUCCESS", "NOTIFY=SOMETIMES", "ORCPT=rfc822", "ORCPT=rfc822;a=b@c"]

            def talk() -> dict[str, tuple[int, bytes]]:
                said: dict[str, tuple[int, bytes]] = {}
                with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as client:
                    client.ehlo("mx.acme.example")
                    for option in ("RET=BOTH", "ENVID=" + "x" * 101, "ENVID=a=b"):
                        said[option] = client.mail(STAFF, [option])
                    said["RET=HDRS"] = client.mail(STAFF, ["RET=HDRS", "ENVID=ok"])
                    for option in [*bad_rcpt, "FOO=1"]:
                        said[option] = client.rcpt(DELIVERS, [option])
                    said["good"] = client.rcpt(DELIVERS, ["NOTIFY=success,delay", "ORCPT=rfc822;x@y"])
                return said

            said = await asyncio.to_thread(talk)
            for option in ("RET=BOTH", "ENVID=" + "x" * 101, "ENVID=a=b", *bad_rcpt):
                code, text = said[option]
                assert code == 501 and text.startswith(b"5.5.4 " + option.split("=")[0].encode()), (
                    option,
                    text,
                )
            assert said["RET=HDRS"][0] == 250
            assert said["FOO=1"][0] == 555  # a parameter the gateway does not know: refused as before
            assert said["good"][0] == 250


NOC = "it-alerts@acme.example"


def mailed(sink: Sink) -> list[tuple[str, list[str], str]]:
    """Every mail the gateway sent out: envelope sender, envelope recipients and Subject."""
    got = []
    for env_from, rcpts, raw in sink.messages:
        got.append((env_from, rcpts, str(message_from_bytes(raw, policy=policy.default)["Subject"])))
    return sorted(got, key=lambda m: m[2])


async def test_a_users_notify_leaves_the_accounts_notify_address_its_notices(tmp_path: Path) -> None:
    """RFC 3461: DSNs go to the MAIL FROM. A user's NEVER keeps nothing from the company's notify
    address, and a user's SUCCESS sends no delivered notice there: the DSN goes to the user."""
    sink_port = free_port()
    async with FakeSMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", notify_address=NOC))
            rcpts = [(FAILS, ["NOTIFY=NEVER"]), (DELIVERS, ["NOTIFY=SUCCESS"])]
            said = await asyncio.to_thread(transaction, gw.port, [], rcpts, body())
            assert said["DATA"][0] == 250, said
            await settled(gw, 2)
            await sink.wait(2)
            await asyncio.sleep(0.5)  # a third mail would be queued by now
            assert mailed(sink) == [
                ("<>", [STAFF], "SMS delivered to +48601123456"),
                ("<>", [NOC], "Undelivered SMS to +48601123413"),
            ]


async def test_notify_failure_bounces_to_the_sender_of_an_account_that_mails_nothing(tmp_path: Path) -> None:
    sink_port = free_port()
    async with FakeSMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await gw.store.write(
                lambda: gw.store.accounts.update_account("acme", dlr_mail="none", notify_address=NOC)
            )
            rcpts = [(FAILS, ["NOTIFY=FAILURE"]), (FAILS_TOO, [])]
            said = await asyncio.to_thread(transaction, gw.port, [], rcpts, body())
            assert said["DATA"][0] == 250, said
            await settled(gw, 2)
            await sink.wait(1)
            await asyncio.sleep(0.5)
            assert mailed(sink) == [("<>", [STAFF], "Undelivered SMS to +48601123413")]


async def test_a_delivery_receipt_asked_for_is_a_dsn_from_the_null_sender(tmp_path: Path) -> None:
    """RFC 3461 6.2 and RFC 3464: a success DSN is multipart/report from `MAIL FROM:<>`, Action
    delivered, with the ORCPT and ENVID the client gave, and without the SMS text."""
    sink_port = free_port()
    async with FakeSMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            rcpts = [(DELIVERS, ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;jan@crm.acme.example"])]
            said = await asyncio.to_thread(transaction, gw.port, ["ENVID=QQ1"], rcpts, body("Code XYLOFON"))
            assert said["DATA"][0] == 250, said
            await sink.wait(1)
            env_from, to, raw = sink.messages[0]
            assert (env_from, to) == ("<>", [STAFF])  # the null reverse path
            (receipt,) = outbound(sink)
            assert receipt.get_content_type() == "multipart/report"
            assert receipt.get_param("report-type") == "delivery-status"
            assert receipt["Auto-Submitted"] == "auto-replied"
            per_message, per_recipient = report_fields(receipt)
            assert per_message["Original-Envelope-Id"] == "QQ1"
            assert per_recipient["Original-Recipient"] == "rfc822; jan@crm.acme.example"
            assert per_recipient["Final-Recipient"] == f"rfc822; {DELIVERS}"
            assert (per_recipient["Action"], per_recipient["Status"]) == ("delivered", "2.0.0")
            assert "was delivered" in receipt.get_body(("plain",)).get_content()
            assert b"XYLOFON" not in raw


async def test_the_same_phone_named_twice_asks_what_either_naming_asked(tmp_path: Path) -> None:
    async with FakeSMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg) as gw:
            twice = f"+48601123456@{DOMAIN}"
            thrice = f"601123457@{DOMAIN}"
            rcpts = [
                (DELIVERS, ["NOTIFY=NEVER"]),
                (twice, ["NOTIFY=SUCCESS,FAILURE"]),
                (thrice, ["NOTIFY=NEVER"]),
                (f"+48601123457@{DOMAIN}", ["NOTIFY=NEVER"]),
            ]
            said = await asyncio.to_thread(transaction, gw.port, [], rcpts, body())
            assert said["DATA"][0] == 250, said
            rows = gw.store.db.conn.execute("SELECT recipient, notify FROM messages ORDER BY id").fetchall()
            assert rows == [("+48601123456", "success,failure"), ("+48601123457", "never")]


async def test_an_exchange_relays_notify_failure_keeps_the_accounts_delivered_notices(tmp_path: Path) -> None:
    # Exchange writes NOTIFY=FAILURE on every mail it relays: a NOTIFY naming only the other
    # outcome took the delivered notice an account on dlr_mail = all has for its senders.
    sink_port = free_port()
    async with FakeSMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", dlr_mail="all"))
            rcpts = [(DELIVERS, ["NOTIFY=FAILURE", f"ORCPT=rfc822;{DELIVERS}"])]
            said = await asyncio.to_thread(transaction, gw.port, [], rcpts, body())
            assert said["DATA"][0] == 250, said
            await settled(gw, 1)
            await sink.wait(1)
            (notice,) = outbound(sink)
            assert str(notice["Subject"]) == "SMS delivered to +48601123456"
            assert sink.messages[0][1] == [STAFF]
