"""A bounce's reason written in UTF-8 is kept as written in the answer's note (R-3, R-5.2).

An SMTPUTF8 server's DSN (RFC 6533) gives its Diagnostic-Code in UTF-8: a Polish server's "Skrzynka
użytkownika pełna" reached the answer's note, `mo list`, the panel and the bill as "Skrzynka
u��ytkownika pe��na" (the bytes parser's compat32 fields made each 8-bit byte unknown), and a
message/global-delivery-status part was read as a mail, its recipients' blocks never read at all.
A real daemon with its built-in SMSC simulator over SMPP, a real relay taking the answer mail, the
DSN delivered to the relay port over SMTP with 8BITMIME as the smarthost delivers it, the month's
file written from the SQLite file.
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

import pytest

from tests.conftest import STAFF
from tests.test_answer_bounced_later import answer_mailed
from tests.test_billing_answer_refused import replies
from tests.test_own_numbers import FALLBACK
from tests.test_reply_refused import mo_row, outbox

WHY = "smtp; 552 5.2.2 Skrzynka użytkownika pełna"


def dsn(answer_id: str, part: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.acme.example\r\nTo: smsgw@sms.example.com\r\n"
        "Subject: =?utf-8?q?Zwrot_wiadomo=C5=9Bci?=\r\nMessage-ID: <d8@mx.acme.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nNie doręczono.\r\n"
        f"--b\r\nContent-Type: {part}\r\n\r\nReporting-MTA: dns; mx.acme.example\r\n\r\n"
        f"Final-Recipient: rfc822; {STAFF}\r\nAction: failed\r\nStatus: 5.2.2\r\nDiagnostic-Code: {WHY}\r\n"
        "\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: +48601222222@sms.example.com\r\nTo: {STAFF}\r\nMessage-ID: {answer_id}\r\n\r\n--b--\r\n"
    ).encode()


def deliver(port: int, raw: bytes, rcpt: str) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("mx.acme.example")
        assert c.mail("", ["BODY=8BITMIME"])[0] == 250
        assert c.rcpt(rcpt)[0] == 250
        code, text = c.data(raw)
        return f"{code} {text.decode()}"


@pytest.mark.parametrize("part", ["message/delivery-status", "message/global-delivery-status"])
async def test_a_utf8_bounce_reason_is_kept_as_written(tmp_path: Path, part: str) -> None:
    async with answer_mailed(tmp_path) as (gw, _, answer_id):
        sent = await asyncio.to_thread(deliver, gw.port, dsn(answer_id, part), gw.config.mail.from_address)
        assert sent.startswith("250 "), sent
        await gw.until(lambda: outbox(gw)[0][2] == "failed")
        said = f"the mail to {STAFF} bounced after the mail relay took it (5.2.2 {WHY}); sent to {FALLBACK}"
        assert mo_row(gw) == ("fallback", said)
        assert replies(gw, tmp_path) == [("failed", said)]
