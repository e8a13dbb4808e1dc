"""R-1.8 for a Message-ID the gateway cannot write back: the same mail sent twice is sent once.

An id with no "@" (`<1234567890.JavaMail.app>`, as some Java mailers write) or over 250 characters
is left out of the answers' In-Reply-To and References (`mailheaders.msgid_token`), which is right
for threading; it was left out of the duplicate key too, so a client's retry of such a mail after a
lost 250, with no relaying server's Received: line to know it by, sent a second SMS. The key reads
the field as written (`mailidentity.unwritable_id`); the answers still name the gateway's own id.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from gateway.smtp import replies
from tests.conftest import DOMAIN, STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC

RCPT = f"601125004@{DOMAIN}"


def raw_mail(message_id: str, written: float, text: str = "Same mail, sent again") -> bytes:
    head = f"From: {STAFF}\r\nTo: {RCPT}\r\nSubject: retry\r\nDate: {formatdate(written)}\r\n"
    return (head + f"Message-ID: {message_id}\r\n\r\n{text}\r\n").encode()


def deliver(port: int, raw: bytes) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.acme.example")
        client.mail(STAFF)
        code, said = client.rcpt(RCPT)
        assert code == 250, said
        code, said = client.data(raw)
        return f"{code} {said.decode()}"


@pytest.mark.parametrize(
    "message_id",
    ["<1234567890.JavaMail.app>", "<" + "x" * 251 + "@host.acme.example>", '<"a b"@host.acme.example>'],
    ids=["no-at", "too-long", "quoted"],
)
async def test_a_retry_of_a_mail_whose_message_id_cannot_be_written_back_is_a_duplicate(
    tmp_path: Path, message_id: str
) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        mail = raw_mail(message_id, time.time())
        first = await asyncio.to_thread(deliver, gw.port, mail)
        assert first.startswith("250 2.0.0 OK: queued as "), first
        assert await asyncio.to_thread(deliver, gw.port, mail) == replies.OK_DUPLICATE
        # Another mail with the same id and words, written at another time, is a new mail.
        later = raw_mail(message_id, time.time() - 3600)
        assert (await asyncio.to_thread(deliver, gw.port, later)).startswith("250 2.0.0 OK: queued as ")
        await smsc.wait_for(2)
        assert gw.store.admin.count_messages() == 2
        # Threading still leaves it out: the mail carries the gateway's own id.
        ids = [r[0] for r in gw.store.queue.conn.execute("SELECT header_message_id FROM emails")]
        assert len(ids) == 2 and not any(message_id.strip("<>") in (i or "") for i in ids), ids
