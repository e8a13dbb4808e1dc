"""R-2.2: a sender with no part left is refused at RCPT, before the body, in the words of DATA (the
count said as the least a mail needs), when a mail client logged in on the submission port and no
mail of the sender's can come again.

Every SMS takes at least one part. A user whose limit was used up (and told so) got 250 to MAIL and
RCPT and its 550 only after the final dot: up to the size limit uploaded for nothing. The first mail
past the limit still goes to DATA, whose refusal mails the user the notice; info@, which says what
is left, is still answered.

A client's retry of a mail whose 250 it lost must get "250 duplicate", which only DATA's dedup key
can tell: refused at RCPT it got a permanent 550, and its sender a bounce saying "not sent" for an
SMS that went. That is a mail server's queue retry on the relay port, and on the submission port a
mail program's outbox or a company's Postfix relaying through it with a login. So a sender who
mailed the gateway within the retry window is refused at DATA, after that check, on either port.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest

from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_submission import COLLEAGUE, PASSWORD, acme_user, secure, submission_config, with_password

RCPT = f"601125003@{DOMAIN}"
Connect = Callable[[], smtplib.SMTP]


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def relay_port(port: int) -> Connect:
    def connect() -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", port, timeout=30)
        client.ehlo("mx.acme.example")
        return client

    return connect


def logged_in(port: int, tls: tuple[Path, Path], login: str = STAFF) -> Connect:
    def connect() -> smtplib.SMTP:
        client = secure(port, tls)
        client.login(login, PASSWORD)
        return client

    return connect


def transaction(
    connect: Connect, raw: bytes, sender: str = STAFF
) -> tuple[tuple[int, str], tuple[int, str] | None]:
    """(the reply to RCPT, the reply to the final dot or None when RCPT was refused)."""
    with connect() as client:
        client.mail(sender)
        code, said = client.rcpt(RCPT)
        rcpt = (code, said.decode())
        if code != 250:
            return rcpt, None
        code, said = client.data(raw)
        return rcpt, (code, said.decode())


def body(text: str) -> bytes:
    return f"From: {STAFF}\r\nTo: {RCPT}\r\nSubject: alert\r\n\r\n{text}\r\n".encode()


def info_rcpt(connect: Connect) -> tuple[int, str]:
    with connect() as client:
        client.mail(STAFF)
        code, said = client.rcpt(f"info@{DOMAIN}")
        return code, said.decode()


WORDS = f"5.7.1 Daily limit of user {STAFF}: 1 part, used 1, this email needs 1"


ACCOUNT_WORDS = "5.7.1 Daily limit of account acme: 1 part, used 1, this email needs 1"


async def test_a_used_up_daily_limit_is_refused_at_rcpt_in_the_words_of_data(
    tmp_path: Path, tls_pair: Any
) -> None:
    async with HappySMSC() as smsc, running_gateway(submission_config(tmp_path, smsc.port, tls_pair)) as gw:
        await with_password(gw)
        await acme_user(gw, COLLEAGUE)
        client = logged_in(gw.daemon.submission_port, tls_pair)
        # The account's part used by a colleague: nothing of this user's was taken to come again.
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", daily_limit=1))
        colleague = logged_in(gw.daemon.submission_port, tls_pair, COLLEAGUE)
        rcpt, data = await asyncio.to_thread(transaction, colleague, body("Backup done"), COLLEAGUE)
        assert rcpt[0] == 250 and data is not None and data[0] == 250, (rcpt, data)
        await smsc.wait_for(1)
        # The first past the limit: refused after its body, which mails the user the notice.
        rcpt, data = await asyncio.to_thread(transaction, client, body("Backup failed"))
        assert rcpt[0] == 250 and data is not None and data[0] == 550, (rcpt, data)
        assert ACCOUNT_WORDS + ";" in f"{data[0]} {data[1]}"
        # Then before the body, with the same code and words, but for the count: the body is not
        # known yet, and "needs 1" read as this mail's count when it may need more.
        rcpt, data = await asyncio.to_thread(transaction, client, body("Disk full"))
        assert data is None and rcpt[0] == 550, rcpt
        assert ACCOUNT_WORDS.replace("needs 1", "needs at least 1") + ";" in f"{rcpt[0]} {rcpt[1]}"
        assert (await asyncio.to_thread(info_rcpt, client))[0] == 250  # what is left may be asked
        # A limit raised by the admin lets the next mail through at once.
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", daily_limit=2))
        rcpt, data = await asyncio.to_thread(transaction, client, body("Disk full"))
        assert rcpt[0] == 250 and data is not None and data[0] == 250, (rcpt, data)
        assert gw.store.admin.count_messages() == 2
        await smsc.wait_for(2)


async def test_a_mail_programs_resend_past_a_used_up_limit_is_a_duplicate_not_a_refusal(
    tmp_path: Path, tls_pair: Any
) -> None:
    # Outlook's outbox after a lost 250, or a company's Postfix relaying through the submission port.
    async with HappySMSC() as smsc, running_gateway(submission_config(tmp_path, smsc.port, tls_pair)) as gw:
        await with_password(gw)
        client = logged_in(gw.daemon.submission_port, tls_pair)
        await gw.store.write(lambda: gw.store.accounts.set_user(STAFF, daily_limit=1))
        first = as_sent("Backup done")
        rcpt, data = await asyncio.to_thread(transaction, client, first)
        assert data is not None and data[0] == 250, (rcpt, data)
        await smsc.wait_for(1)
        rcpt, data = await asyncio.to_thread(transaction, client, as_sent("Backup failed"))
        assert data is not None and WORDS + ";" in f"{data[0]} {data[1]}", (rcpt, data)  # the notice
        # The first mail again: a duplicate, not "Daily limit ... not sent" at RCPT.
        rcpt, data = await asyncio.to_thread(transaction, client, first)
        assert rcpt[0] == 250 and data == (250, replies.OK_DUPLICATE[4:]), (rcpt, data)
        # A new mail is still refused, permanently, at DATA, with the words it always had.
        rcpt, data = await asyncio.to_thread(transaction, client, as_sent("Disk full"))
        assert rcpt[0] == 250 and data is not None and WORDS + ";" in f"{data[0]} {data[1]}", (rcpt, data)
        assert gw.store.admin.count_messages() == 1
        assert len(smsc.received) == 1


def as_sent(text: str) -> bytes:
    """A mail as a relaying server has it queued: its bytes the same at every retry."""
    msg: EmailMessage = mail(RCPT, text, subject="alert", Message_ID=make_msgid(domain="acme.example"))
    return msg.as_bytes().replace(b"\n", b"\r\n")


async def test_a_relayed_retry_past_a_used_up_limit_is_a_duplicate_not_a_refusal(
    tmp_path: Path,
) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        client = relay_port(gw.port)
        await gw.store.write(lambda: gw.store.accounts.set_user(STAFF, daily_limit=1))
        first = as_sent("Backup done")
        rcpt, data = await asyncio.to_thread(transaction, client, first)
        assert data is not None and data[0] == 250, (rcpt, data)
        await smsc.wait_for(1)
        # The first past the limit: refused after its body, which mails the user the notice.
        rcpt, data = await asyncio.to_thread(transaction, client, as_sent("Backup failed"))
        assert data is not None and WORDS + ";" in f"{data[0]} {data[1]}", (rcpt, data)
        # The first mail again, its 250 lost on the way: a duplicate, not "Daily limit ... not sent".
        rcpt, data = await asyncio.to_thread(transaction, client, first)
        assert rcpt[0] == 250 and data == (250, replies.OK_DUPLICATE[4:]), (rcpt, data)
        # A new mail is still refused, permanently, at DATA.
        rcpt, data = await asyncio.to_thread(transaction, client, as_sent("Disk full"))
        assert rcpt[0] == 250 and data is not None and WORDS + ";" in f"{data[0]} {data[1]}", (rcpt, data)
        assert gw.store.admin.count_messages() == 1
        assert len(smsc.received) == 1
