"""A mail too big for the relay: refused for its declared size (RFC 1870) it fails at once, not after
five days of retries; and a billing file too big for a mail is named by where it lies, not attached.

The relay is aiosmtpd on 127.0.0.1 with a size limit (Postfix's message_size_limit), the store a
real SQLite file with an injected clock.
"""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from billing_reports import job
from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway import outboxworker
from gateway.configservices import MailSection
from gateway.mailer import SmtpRelayMailer
from gateway.mailtransaction import PermanentMailError
from tests.billing_world import at, prepare
from tests.conftest import free_port
from tests.test_mailer import Relay
from tests.test_mailer_smtputf8 import outbox_send

BIG = b"Subject: billing\r\n\r\n" + (b"x" * 70 + b"\r\n") * 3000  # some 216 kB


async def send(relay: Relay, content: bytes, data_size_limit: int) -> None:
    port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port, data_size_limit=data_size_limit)
    controller.start()
    try:
        mailer = SmtpRelayMailer(MailSection(relay=f"127.0.0.1:{port}"), "gw.example")
        await asyncio.wait_for(mailer.send("gw@sms.example.com", "billing@acme.pl", content), 30)
    finally:
        controller.stop()


@pytest.mark.parametrize(
    ("relay", "limit"),
    [(Relay(), 100_000), (Relay(sender="552 5.3.4 Message size exceeds fixed limit"), 33_554_432)],
    ids=["size-limit", "postfix-words"],
)
async def test_a_mail_refused_at_mail_for_its_declared_size_fails_for_good(relay: Relay, limit: int) -> None:
    # SMTPSenderRefused was taken for a refusal of our sender (our setup), retried for five days. With
    # SIZE= sent, a 552 (or 5.3.4) at MAIL is about this mail: it fails at once, before any DATA.
    with pytest.raises(PermanentMailError, match=r"^552 .*\(the mail is \d+ bytes\)$"):
        await send(relay, BIG, limit)
    assert relay.started == 0


@pytest.mark.parametrize(
    ("relay", "limit"),
    [
        (
            Relay(sender="553 5.7.1 <gw@sms.example.com>: Sender address rejected: not owned by user"),
            33_554_432,
        ),
        # A relay that offers no SIZE was not told one: its 552 may be about anything at MAIL.
        (Relay(sender="552 5.2.2 Over quota"), 0),
    ],
    ids=["sender-refused", "no-size-declared"],
)
async def test_a_refusal_at_mail_not_about_the_declared_size_is_still_tried_again(
    relay: Relay, limit: int
) -> None:
    # A 5xx to the gateway's own address at MAIL is about the relay's setup, not the mail: retried
    # (only a null sender's, a bounce's, fails the mail; only one to the size it declared names it).
    with pytest.raises(aiosmtplib.SMTPSenderRefused):
        await send(relay, BIG, limit)


async def test_the_outbox_fails_a_mail_too_big_for_the_relay_at_its_first_try(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outboxworker, "mail_retry_delay", lambda attempts: 0.05)
    port = free_port()
    controller = Controller(Relay(), hostname="127.0.0.1", port=port, data_size_limit=100_000)
    controller.start()
    try:
        state, attempts, error = await outbox_send(tmp_path, port, "billing@acme.pl", BIG, kind="billing")
    finally:
        controller.stop()
    assert (state, attempts) == ("failed", 1)
    assert error is not None and error.startswith("552 ")


def attachments(mail: bytes) -> list[str]:
    msg = message_from_bytes(mail, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return [str(part.get_filename()) for part in msg.iter_attachments()]


def text_of(mail: bytes) -> str:
    msg = message_from_bytes(mail, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    body = msg.get_body(("plain",))
    assert body is not None
    return " ".join(str(body.get_content()).split())


@pytest.mark.parametrize("over", ["file", "mail"])
def test_a_billing_file_too_big_for_a_mail_is_named_by_where_it_lies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, over: str
) -> None:
    # 1,000,000 SMS a month make a file of some 80 MB: attached, a mail no relay takes (Postfix's
    # default is 10 MB), refused or retried for days. The account and the operator get the summary
    # and where the file lies on the gateway. The limit is scaled down with the file: past the file
    # itself, or only past the mail (base64 makes it a third bigger).
    step = 28 * 86400 / 400
    _, cfg = prepare(
        tmp_path,
        free_port(),
        last_billed="2026-02",
        traffic={"acme": [at(2026, 3, 2) + k * step for k in range(400)]},
    )
    files = write_month(
        cfg.db_path, cfg.state_dir, Month(2026, 3), ZoneInfo("Europe/Warsaw"), billing_dir=cfg.billing_dir
    )
    [f] = files.accounts
    size = f.path.stat().st_size
    attached = job.account_mails(cfg, Month(2026, 3), f, ["billing@acme.pl"])
    assert attachments(attached[0][1]) == ["2026-03-acme.txt"]
    monkeypatch.setattr(job, "MAIL_SIZE_LIMIT", size - 1 if over == "file" else size + 100)
    assert len(attached[0][1]) > job.MAIL_SIZE_LIMIT
    mails = job.account_mails(cfg, Month(2026, 3), f, ["billing@acme.pl", cfg.mail.admin_address])
    assert [rcpt for rcpt, _ in mails] == ["billing@acme.pl", cfg.mail.admin_address]
    for _rcpt, mail in mails:
        assert attachments(mail) == [] and len(mail) <= job.MAIL_SIZE_LIMIT
        text = text_of(mail)
        assert "400 SMS" in text and "The account's file lists every SMS" in text
        assert f"It is too big to attach ({size:,} bytes;" in text and f"on the gateway at {f.path}" in text
        assert message_from_bytes(mail, policy=policy.default)["Auto-Submitted"] == "auto-generated"
    monkeypatch.setattr(job, "MAIL_SIZE_LIMIT", 100)
    _sha, summary = job.summary_mail(cfg, files, [])
    assert attachments(summary) == [] and "The summary has a line per account" in text_of(summary)
    assert f"on the gateway at {files.summary}" in text_of(summary)
