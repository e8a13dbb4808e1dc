"""R-1.8 within a retry window: a copy is a retry only as long as a mail server keeps a mail queued.

A mail without a Message-ID is known by its relaying server's queue id (`relayqueueid`). Postfix's
short queue ids repeat (microseconds and an inode number), and a device may put one fixed Message-ID
on every mail; with no time bound, a monitoring system's repeated alert whose key matched any earlier
mail kept for 90 days was answered "duplicate" and never sent. A retry is the same bytes within a
mail server's queue lifetime: the same Date:, the same Received: line, within days. Time is moved,
not slept: the in-process daemon takes an injected clock that the test sets ahead.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from pathlib import Path

from gateway.smtp import replies
from gateway.store.accepting import RETRY_WINDOW_SECONDS, SHORT_RETRY_WINDOW_SECONDS
from tests.conftest import DOMAIN, STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC

RCPT = f"601125002@{DOMAIN}"
DAY = 86400.0
POSTFIX = (
    "Received: from [127.0.0.2] (unknown [127.0.0.2])\r\n"
    "\tby mx.acme.example (Postfix) with ESMTP id 3A1F04D2\r\n"
    f"\tfor <{RCPT}>; {{taken}}\r\n"
)
TAKEN = "Mon,  7 Dec 2026 15:00:00 +0000 (UTC)"


def raw_mail(
    trace: str = "", text: str = "Disk /var is 98% full", *, message_id: str = "", date: str = ""
) -> bytes:
    head = trace + f"From: {STAFF}\r\nTo: {RCPT}\r\nSubject: monitoring\r\n"
    head += f"Message-ID: {message_id}\r\n" if message_id else ""
    head += f"Date: {date}\r\n" if date else ""
    return (head + f"\r\n{text}\r\n").encode()


def deliver(port: int, raw: bytes) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mx.acme.example")
        client.mail(STAFF)
        code, said = client.rcpt(RCPT)
        assert code == 250, said
        code, said = client.data(raw)
        return f"{code} {said.decode()}"


async def send(port: int, raw: bytes) -> str:
    return await asyncio.to_thread(deliver, port, raw)


def queued(reply: str) -> bool:
    return reply.startswith("250 2.0.0 OK: queued as ")


async def test_a_queue_id_seen_again_after_the_window_is_a_new_mail(tmp_path: Path) -> None:
    ahead = [0.0]  # the daemon's clock runs this far ahead of the real one
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg, clock=lambda: time.time() + ahead[0]) as gw:
            alert = raw_mail(POSTFIX.format(taken=TAKEN))
            assert queued(await send(gw.port, alert))
            await smsc.wait_for(1)  # sent before the clock moves past its validity
            ahead[0] = RETRY_WINDOW_SECONDS - DAY  # Postfix's retry, days later: still the same mail
            assert await send(gw.port, alert) == replies.OK_DUPLICATE
            ahead[0] = RETRY_WINDOW_SECONDS + DAY  # no server keeps a mail queued this long
            assert queued(await send(gw.port, alert))
            assert await send(gw.port, alert) == replies.OK_DUPLICATE  # and its own retry is one
            assert gw.store.admin.count_messages() == 2
            await smsc.wait_for(2)


async def test_a_short_queue_id_reused_by_another_mail_is_not_its_retry(tmp_path: Path) -> None:
    # Postfix's short id (microseconds, inode) repeats; the server took each mail at its own time.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        assert queued(await send(gw.port, raw_mail(POSTFIX.format(taken=TAKEN))))
        later = TAKEN.replace("15:00:00", "16:00:00")
        assert queued(await send(gw.port, raw_mail(POSTFIX.format(taken=later))))
        assert await send(gw.port, raw_mail(POSTFIX.format(taken=later))) == replies.OK_DUPLICATE
        assert gw.store.admin.count_messages() == 2
        await smsc.wait_for(2)


async def test_a_fixed_message_id_on_new_mails_is_sent_and_its_retries_are_not(tmp_path: Path) -> None:
    # A device that writes one Message-ID on every mail, with each mail's own Date.
    ahead = [0.0]
    fixed = "<alert@nas.acme.example>"
    first = raw_mail(message_id=fixed, date="Mon, 7 Dec 2026 15:00:00 +0000")
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg, clock=lambda: time.time() + ahead[0]) as gw:
            assert queued(await send(gw.port, first))
            second = raw_mail(message_id=fixed, date="Mon, 7 Dec 2026 16:00:00 +0000")
            assert queued(await send(gw.port, second))  # the same words an hour later: a new alert
            assert queued(await send(gw.port, raw_mail(message_id=fixed, text="Fan failed")))
            await smsc.wait_for(3)
            ahead[0] = 3 * DAY  # a mail program's outbox sends its copy again after a weekend
            assert await send(gw.port, first) == replies.OK_DUPLICATE
            ahead[0] = RETRY_WINDOW_SECONDS + DAY
            assert queued(await send(gw.port, first))  # no retry comes this late
            assert gw.store.admin.count_messages() == 4
            await smsc.wait_for(4)


async def test_a_device_mailing_the_relay_port_straight_with_a_fixed_message_id_has_each_alert_sent(
    tmp_path: Path,
) -> None:
    # A UPS card or printer pointed at the relay port: no relaying server's Received: line, one fixed
    # Message-ID and no Date, or a fixed one no clock wrote. Its own retries after a lost 250 come
    # within the hour and go once; the same words hours later are the next power failure.
    ahead = [0.0]
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg, clock=lambda: time.time() + ahead[0]) as gw:
            sent = 0
            for date in ("", "Thu, 01 Jan 1970 00:00:00 +0000"):
                alert = raw_mail(text="UPS on battery power", message_id="<ups@ups-card.local>", date=date)
                assert queued(await send(gw.port, alert))
                ahead[0] += 60.0
                assert await send(gw.port, alert) == replies.OK_DUPLICATE
                ahead[0] += 40 * 60.0  # a queueing client's retry: 10 minutes' wait, then 30 (RFC 5321)
                assert await send(gw.port, alert) == replies.OK_DUPLICATE, date
                ahead[0] += SHORT_RETRY_WINDOW_SECONDS
                assert queued(await send(gw.port, alert)), date  # the next failure: it was "duplicate"
                sent += 2
                await smsc.wait_for(sent)
                ahead[0] += DAY  # the identical-text rule's count starts again
            assert gw.store.admin.count_messages() == 4
