"""R-2.2: a sender with no part left is refused at RCPT, before the body, in the words of DATA (the
count said as the least a mail needs).

Every SMS takes at least one part. A user whose daily limit was used up (and told so) got 250 to
MAIL and RCPT and its 550 only after the final dot: up to the size limit uploaded for nothing. The
first mail past the limit still goes to DATA, whose refusal mails the user's notice; info@, which
says what is left, is still answered.
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

from tests.conftest import DOMAIN, STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC

RCPT = f"601125003@{DOMAIN}"


def transaction(port: int, text: str) -> tuple[tuple[int, str], tuple[int, str] | None]:
    """(the reply to RCPT, the reply to the final dot or None when RCPT was refused)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mx.acme.example")
        client.mail(STAFF)
        code, said = client.rcpt(RCPT)
        rcpt = (code, said.decode())
        if code != 250:
            return rcpt, None
        raw = f"From: {STAFF}\r\nTo: {RCPT}\r\nSubject: alert\r\n\r\n{text}\r\n".encode()
        code, said = client.data(raw)
        return rcpt, (code, said.decode())


def info_rcpt(port: int) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mx.acme.example")
        client.mail(STAFF)
        code, said = client.rcpt(f"info@{DOMAIN}")
        return code, said.decode()


async def test_a_used_up_daily_limit_is_refused_at_rcpt_in_the_words_of_data(tmp_path: Path) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.store.write(lambda: gw.store.accounts.set_user(STAFF, daily_limit=1))
        rcpt, data = await asyncio.to_thread(transaction, gw.port, "Backup done")
        assert rcpt[0] == 250 and data is not None and data[0] == 250, (rcpt, data)
        await smsc.wait_for(1)
        # The first past the limit: refused after its body, which mails the user the notice.
        rcpt, data = await asyncio.to_thread(transaction, gw.port, "Backup failed")
        assert rcpt[0] == 250 and data is not None and data[0] == 550, (rcpt, data)
        words = f"5.7.1 Daily limit of user {STAFF}: 1 part, used 1, this email needs 1"
        assert words + ";" in f"{data[0]} {data[1]}"
        # Then before the body, with the same code and words, but for the count: the body is not
        # known yet, and "needs 1" read as this mail's count when it may need more.
        rcpt, data = await asyncio.to_thread(transaction, gw.port, "Disk full")
        assert data is None and rcpt[0] == 550, rcpt
        assert words.replace("needs 1", "needs at least 1") + ";" in f"{rcpt[0]} {rcpt[1]}"
        assert (await asyncio.to_thread(info_rcpt, gw.port))[0] == 250  # what is left may be asked
        # A limit raised by the admin lets the next mail through at once.
        await gw.store.write(lambda: gw.store.accounts.set_user(STAFF, daily_limit=2))
        rcpt, data = await asyncio.to_thread(transaction, gw.port, "Disk full")
        assert rcpt[0] == 250 and data is not None and data[0] == 250, (rcpt, data)
        assert gw.store.admin.count_messages() == 2
        await smsc.wait_for(2)
