"""R-1.8 for mail without a Message-ID: the relaying server's retry is known by its queue id.

Postfix adds no Message-ID to mail from a relayed client (scripts, printers, monitoring systems).
When the 250 after the final dot was lost on the way back, Postfix logged "may be sent more than
once", sent the mail again from its queue, and the phone got two SMS. The retry carries the same top
Received: line, which names the queue entry: Postfix, Exim and Sendmail ids count, Exchange's
"id 15.20.x.y" (its version, the same on every mail) never does. The Received lines are as those
servers write them (Postfix 3.7 in front of the gateway; the others from mail they relayed).
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

import pytest

from gateway.smtp import replies
from gateway.smtp.mailidentity import dedup_key
from gateway.smtp.relayqueueid import queue_identity
from tests.conftest import DOMAIN, STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC

NUMBER = "601125001"
RCPT = f"{NUMBER}@{DOMAIN}"

POSTFIX = (
    "Received: from [127.0.0.2] (unknown [127.0.0.2])\r\n"
    "\tby mx.example.com (Postfix) with ESMTP id {qid}\r\n"
    f"\tfor <{RCPT}>; Sat,  5 Dec 2026 16:13:19 +0000 (UTC)\r\n"
)
EXCHANGE = (
    "Received: from Asurada-Nvidia.nvidia.com (10.127.8.12) by mail.nvidia.com\r\n"
    " (10.129.68.6) with Microsoft SMTP Server id 15.2.2562.20 via Frontend\r\n"
    " Transport; Sun, 12 Oct 2025 16:57:51 -0700\r\n"
)
EXIM_OLD = (
    "Received: from ch-vpn.virtuozzo.com ([130.117.225.6] helo=iris.sw.ru)\r\n"
    " by relay.virtuozzo.com with esmtp (Exim 4.96)\r\n"
    " (envelope-from <den@openvz.org>) id 1qLPc1-00HTc0-2U;\r\n"
    " Mon, 17 Jul 2023 16:55:39 +0200\r\n"
)
EXIM_NEW = (
    "Received: from jgg by wakko with local (Exim 4.97)\r\n"
    "\t(envelope-from <jgg@ziepe.ca>)\r\n"
    "\tid 1wgndw-00000000dS8-35OA;\r\n"
    "\tMon, 06 Jul 2026 15:02:08 -0300\r\n"
)
EXIM_TLS = (
    "Received: from pty.whiteo.stw.pengutronix.de ([2a0a:edc0:2:b01:1d::c5])\r\n"
    "\tby drehscheibe.grey.stw.pengutronix.de with esmtps  (TLS1.3) tls"
    " TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\r\n"
    "\t(Exim 4.96)\r\n"
    "\t(envelope-from <mfe@pengutronix.de>)\r\n"
    "\tid 1w18WL-000864-28;\r\n"
    "\tFri, 13 Mar 2026 20:50:05 +0100\r\n"
)
SENDMAIL = (
    "Received: from fllv0034.itg.ti.com ([10.64.40.246])\r\n"
    "        by fllv0015.ext.ti.com (8.15.2/8.15.2) with ESMTP id x7S7v9kS014940\r\n"
    "        for <a@ti.com>; Wed, 28 Aug 2019 02:57:09 -0500\r\n"
)
NO_ID = (  # Postfix with more than one recipient and no cleanup (a proxy filter's hop): no id
    "Received: from a (a [192.0.2.1])\r\n\tby mx.example.com (Postfix) with ESMTP;\r\n"
    "\tSat, 5 Dec 2026 16:13:19 +0000 (UTC)\r\n"
)
POSTFIX_TABS = (  # Postfix's own clauses run together with tabs by a later hop's rewrap
    "Received: from mail-vw0-f51.google.com (mail-vw0-f51.google.com\r\n"
    " [209.85.212.51])\tby mxa.example.org (Postfix) with ESMTPS id 9F1E6F01FAC\tfor\r\n"
    " <bob@example.net>; Fri, 22 Apr 2011 18:21:06 +0000 (UTC)\r\n"
)


def raw_mail(trace: str, text: str = "Disk /var is 98% full", *, message_id: str | None = None) -> bytes:
    head = trace + f"From: {STAFF}\r\nTo: {RCPT}\r\nSubject: monitoring\r\n"
    if message_id:
        head += f"Message-ID: {message_id}\r\n"
    return (head + f"\r\n{text}\r\n").encode()


def deliver(port: int, raw: bytes) -> tuple[int, str]:
    """One transaction as a relaying server makes it: the reply to the final dot."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mx.example.com")
        client.mail(STAFF)
        code, said = client.rcpt(RCPT)
        assert code == 250, said
        code, said = client.data(raw)
        return code, said.decode()


async def send(port: int, raw: bytes) -> str:
    code, said = await asyncio.to_thread(deliver, port, raw)
    assert code == 250, said
    return f"{code} {said}"


async def test_a_relayed_retry_without_message_id_is_answered_as_a_duplicate_and_sent_once(
    tmp_path: Path,
) -> None:
    # Postfix's retry of a mail whose 250 it never heard: same bytes, same queue id in its line.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        mail = raw_mail(POSTFIX.format(qid="5CE46160270"))
        first = await send(gw.port, mail)
        assert first != replies.OK_DUPLICATE
        assert await send(gw.port, mail) == replies.OK_DUPLICATE  # as with a Message-ID
        assert gw.store.admin.count_messages() == 1
        await smsc.wait_for(1)
        for trace in (EXIM_OLD, EXIM_NEW, SENDMAIL):
            other = raw_mail(trace, "Backup failed")
            assert await send(gw.port, other) != replies.OK_DUPLICATE
            assert await send(gw.port, other) == replies.OK_DUPLICATE
        assert gw.store.admin.count_messages() == 4
        await smsc.wait_for(4)
        assert len(smsc.received) == 4


async def test_mails_the_received_line_does_not_tell_apart_are_each_sent(tmp_path: Path) -> None:
    # A monitoring system's repeated alert: same sender, same text. Behind Exchange (whose "id" is
    # its version), from two Postfix queue entries, or under a line of no known shape, each is a mail.
    upper = POSTFIX.format(qid="C7066160019").replace("(Postfix) with ESMTP id", "(POSTFIX) WITH ESMTP ID")
    no_id = NO_ID
    sent = [
        (EXCHANGE, "Disk /var is 98% full"),
        (EXCHANGE, "Disk /var is 98% full"),
        (POSTFIX.format(qid="8A1B2C3D4E"), "Backup failed"),
        (POSTFIX.format(qid="8A1B2C3D4F"), "Backup failed"),
        (upper, "Load 40"),
        (upper, "Load 40"),
        (no_id, "Printer out of paper"),
        (no_id, "Printer out of paper"),
    ]
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        for trace, text in sent:
            assert await send(gw.port, raw_mail(trace, text)) != replies.OK_DUPLICATE, trace
        assert gw.store.admin.count_messages() == len(sent)
        await smsc.wait_for(len(sent))


@pytest.mark.parametrize(
    ("trace", "expected"),
    [
        (POSTFIX.format(qid="5CE46160270"), ("postfix", "mx.example.com", "5CE46160270")),
        (POSTFIX.format(qid="3Pj1Qb3ZnTz9vbX"), ("postfix", "mx.example.com", "3Pj1Qb3ZnTz9vbX")),  # long ids
        (POSTFIX_TABS, ("postfix", "mxa.example.org", "9F1E6F01FAC")),
        (EXIM_OLD, ("exim", "relay.virtuozzo.com", "1qLPc1-00HTc0-2U")),
        (EXIM_NEW, ("exim", "wakko", "1wgndw-00000000dS8-35OA")),
        (EXIM_TLS, ("exim", "drehscheibe.grey.stw.pengutronix.de", "1w18WL-000864-28")),
        (SENDMAIL, ("sendmail", "fllv0015.ext.ti.com", "x7S7v9kS014940")),
    ],
)
def test_the_queue_id_of_each_known_server(trace: str, expected: tuple[str, str, str]) -> None:
    assert queue_identity(raw_mail(trace)) == "\0".join(expected)
    # RFC 5322: a field's name is any case; the clauses are the server's own words, matched as written
    assert queue_identity(raw_mail(trace.replace("Received:", "RECEIVED:"))) == "\0".join(expected)


@pytest.mark.parametrize(
    "trace",
    [
        EXCHANGE,
        # Exchange with TLS: the version again, after the cipher
        "Received: from HQMAIL101.nvidia.com (172.20.187.10) by HQMAIL111.nvidia.com\r\n"
        " (172.20.187.18) with Microsoft SMTP Server (TLS) id 15.0.1497.2; Thu, 26 Aug\r\n"
        " 2021 10:40:34 +0000\r\n",
        # qmail: the number is qmail-smtpd's process, which takes many mails
        "Received: (qmail 12345 invoked from network); 5 Dec 2026 16:13:19 -0000\r\n",
        "Received: from unknown (HELO mx.example.com) (192.0.2.1)\r\n  by mail.example.net with SMTP;"
        " 5 Dec 2026 16:13:19 -0000\r\n",
        # a version-like id in a Postfix shape
        POSTFIX.format(qid="15.20.1234.5"),
        POSTFIX.format(qid="1520123456"),
        NO_ID,
        # keywords not as the server writes them
        POSTFIX.format(qid="C7066160019").replace("with ESMTP id", "WITH ESMTP ID"),
        POSTFIX.format(qid="C7066160019").replace("(Postfix)", "(postfix)"),
        # the id folded apart
        POSTFIX.format(qid="C70661\r\n\t60019"),
        # a Postfix line inside a comment (a HELO or a forger's), the real clause of another server
        "Received: from x (by mx.example.com (Postfix) with ESMTP id C7066160019;)\r\n"
        "\tby other.example.com with SMTP; Sat, 5 Dec 2026\r\n",
        # an unbalanced "(" in the HELO puts the rest in a comment
        "Received: from x( (unknown [192.0.2.1])\r\n\tby mx.example.com (Postfix) with ESMTP id C7066160019;"
        " Sat, 5 Dec 2026\r\n",
        # something after the id that Postfix never writes
        POSTFIX.format(qid="C7066160019 extra"),
        # Postfix's pickup (local submission): not one of the shapes; Postfix adds a Message-ID there
        "Received: by mail.zzz.org (Postfix, from userid 889)\r\n"
        "\tid 27CEAD38CC; Fri,  4 May 2001 14:05:44 -0400 (EDT)\r\n",
        # Sendmail without the "for" clause
        SENDMAIL.replace("x7S7v9kS014940\r\n        for <a@ti.com>;", "x7S7v9kS014940;"),
        # Exim with an id of neither format
        EXIM_NEW.replace("1wgndw-00000000dS8-35OA", "1wgndw-00000000dS8"),
    ],
)
def test_no_identity_from_a_line_of_no_known_shape(trace: str) -> None:
    assert queue_identity(raw_mail(trace)) is None
    assert dedup_key(None, STAFF, "Disk /var is 98% full", raw_mail(trace)) is None


def test_only_the_top_received_line_counts() -> None:
    # The line of the server that handed the mail to us; an earlier hop's id is not this delivery's.
    below = "Received: from a by b.example.com with SMTP; Sat, 5 Dec 2026\r\n"
    below += POSTFIX.format(qid="C7066160019")
    assert queue_identity(raw_mail(below)) is None
    in_body = b"Subject: x\r\n\r\n" + POSTFIX.format(qid="C7066160019").encode()
    assert queue_identity(in_body) is None


def test_the_key_is_the_mail_the_queue_entry_and_the_sender() -> None:
    mail = raw_mail(POSTFIX.format(qid="C7066160019"))
    key = dedup_key(None, STAFF, "text", mail)
    assert key is not None and key == dedup_key(None, STAFF, "text", mail)
    assert key != dedup_key(None, "other@acme.example", "text", mail)
    assert key != dedup_key(None, STAFF, "other text", mail)
    other_host = raw_mail(POSTFIX.format(qid="C7066160019").replace("mx.", "mx2."))
    assert key != dedup_key(None, STAFF, "text", other_host)
    # with a Message-ID and no Date: the queue entry counts; without a known line the Message-ID alone
    assert dedup_key("<a@b>", STAFF, "text", mail) == dedup_key("<a@b>", STAFF, "text", mail)
    assert dedup_key("<a@b>", STAFF, "text", mail) != dedup_key("<a@b>", STAFF, "text")
    assert dedup_key("<a@b>", STAFF, "text", mail) != key
    assert dedup_key("<a@b>", STAFF, "text", raw_mail(EXCHANGE)) == dedup_key("<a@b>", STAFF, "text")
    # with a Date: as well the Message-ID and Date decide: one mail may sit in two queue entries
    dated = raw_mail(POSTFIX.format(qid="C7066160019") + "Date: Sat, 5 Dec 2026 17:13:10 +0100\r\n")
    requeued = raw_mail(POSTFIX.format(qid="D8177271120") + "Date: Sat, 5 Dec 2026 17:13:10 +0100\r\n")
    assert dedup_key("<a@b>", STAFF, "text", dated) == dedup_key("<a@b>", STAFF, "text", requeued)
    assert dedup_key(None, STAFF, "text", dated) != dedup_key(None, STAFF, "text", requeued)


async def test_a_device_with_one_fixed_message_id_and_no_date_has_each_relayed_alert_sent(
    tmp_path: Path,
) -> None:
    # A UPS card writes <alert@ups.local> on every mail and no Date: (it has no clock). Its relay
    # queues each alert as a mail of its own, an hour apart: the second was dropped as "duplicate".
    fixed = "<alert@ups.local>"
    first = raw_mail(POSTFIX.format(qid="4ZK1Ab1cdez"), "UPS on battery power", message_id=fixed)
    later = POSTFIX.format(qid="4ZK2Xy9qwer").replace("16:13:19", "17:13:20")
    second = raw_mail(later, "UPS on battery power", message_id=fixed)
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        assert await send(gw.port, first) != replies.OK_DUPLICATE
        assert await send(gw.port, second) != replies.OK_DUPLICATE
        # The relay's retries keep its own line: each still goes once.
        assert await send(gw.port, first) == replies.OK_DUPLICATE
        assert await send(gw.port, second) == replies.OK_DUPLICATE
        assert gw.store.admin.count_messages() == 2
        await smsc.wait_for(2)
        assert len(smsc.received) == 2


async def test_a_client_retry_with_message_id_and_date_through_two_queue_entries_is_sent_once(
    tmp_path: Path,
) -> None:
    # A mail program lost the 250 after its dot and sent the mail again to its own relay (Exchange's
    # shadow copy resubmitted alike): the same mail, Message-ID and Date, in two queue entries that
    # relay forwards each. SPEC: a client retry goes once.
    dated = "Date: Sat, 5 Dec 2026 17:13:10 +0100\r\n"
    first = raw_mail(POSTFIX.format(qid="4ZK1Ab1cdez") + dated, "Serwer padl", message_id="<abc@pc.example>")
    later = POSTFIX.format(qid="4ZK1Cd2efgz").replace("16:13:19", "16:13:49") + dated
    second = raw_mail(later, "Serwer padl", message_id="<abc@pc.example>")
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        assert await send(gw.port, first) != replies.OK_DUPLICATE
        assert await send(gw.port, second) == replies.OK_DUPLICATE
        assert gw.store.admin.count_messages() == 1
        await smsc.wait_for(1)
        assert len(smsc.received) == 1


async def test_a_device_with_one_fixed_message_id_and_a_fixed_date_has_each_relayed_alert_sent(
    tmp_path: Path,
) -> None:
    # A UPS card with no clock writes the same Message-ID and Date ("01 Jan 1970") on every alert:
    # a Date more than the retry window before its relay took the mail tells nothing, so the queue
    # entry counts as for a mail without Date. The second alert was "250 duplicate" for 7 days.
    fixed, epoch = "<alert@ups.local>", "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"
    first = raw_mail(POSTFIX.format(qid="4ZK1Ab1cdez") + epoch, "UPS on battery power", message_id=fixed)
    later = POSTFIX.format(qid="4ZK2Xy9qwer").replace("16:13:19", "17:13:20") + epoch
    second = raw_mail(later, "UPS on battery power", message_id=fixed)
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        assert await send(gw.port, first) != replies.OK_DUPLICATE
        assert await send(gw.port, second) != replies.OK_DUPLICATE
        assert await send(gw.port, first) == replies.OK_DUPLICATE  # the relay's retry still goes once
        assert gw.store.admin.count_messages() == 2
        await smsc.wait_for(2)
        assert len(smsc.received) == 2


def test_a_date_long_before_the_relay_took_the_mail_counts_as_none() -> None:
    # Measured against the top Received: date; without a readable one, against the clock.
    def key(trace: str, date: str, now: float | None = None) -> str | None:
        return dedup_key("<a@b>", STAFF, "text", raw_mail(trace + f"Date: {date}\r\n"), now)

    one, two = POSTFIX.format(qid="C7066160019"), POSTFIX.format(qid="D8177271120")
    assert key(one, "Thu, 01 Jan 1970 00:00:00 +0000") != key(two, "Thu, 01 Jan 1970 00:00:00 +0000")
    assert key(one, "Thu, 26 Nov 2026 16:13:20 +0000") != key(two, "Thu, 26 Nov 2026 16:13:20 +0000")
    assert key(one, "Sat, 28 Nov 2026 16:13:20 +0000") == key(two, "Sat, 28 Nov 2026 16:13:20 +0000")
    assert key(one, "no date at all") != key(two, "no date at all")  # no clock wrote it either
    # a Received: date that cannot be read: the clock decides
    undated_one = one.replace("Sat,  5 Dec 2026 16:13:19 +0000 (UTC)", "yesterday")
    undated_two = two.replace("Sat,  5 Dec 2026 16:13:19 +0000 (UTC)", "yesterday")
    dec_5 = 1796487199.0
    old, recent = "Thu, 26 Nov 2026 16:13:20 +0000", "Sat, 5 Dec 2026 16:10:00 +0000"
    assert key(undated_one, old, dec_5) != key(undated_two, old, dec_5)
    assert key(undated_one, recent, dec_5) == key(undated_two, recent, dec_5)
    # a recent Date by the clock needs no Received: date read
    assert key(one, recent, dec_5) == key(two, recent, dec_5)
