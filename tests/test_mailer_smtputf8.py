"""Mail whose envelope or headers are not ASCII leaves with SMTPUTF8 (RFC 6531): the daemon takes
SMTPUTF8 mail, so an answer or receipt may go to `zażółć@example.pl`. A relay that does not offer
SMTPUTF8 fails such a mail at once, saying why, instead of an encoding error retried for days; an
ASCII mail is sent as it always was. A domain alone that is not ASCII (`jan@żółw.pl`) goes in IDNA
A-labels, without SMTPUTF8, to any relay.

The relays are aiosmtpd on 127.0.0.1, one offering SMTPUTF8 and one not; the outbox is a real SQLite
file with an injected clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from gateway import notify, outboxworker
from gateway.configservices import MailSection
from gateway.mailer import SmtpRelayMailer
from gateway.mailtransaction import PermanentMailError
from gateway.outboxworker import OutboxWorker
from gateway.store.db import Store
from tests.conftest import free_port
from tests.test_mailer import Relay

SENDER = "gw@sms.example.com"
UTF8_RCPT = "zażółć@example.pl"
UTF8_DOMAIN_RCPT = "anna@żółw.example"
A_LABEL_RCPT = "anna@xn--w-uga1v8h.example"
# IDNA 2003 (Python's codec) would write `faß.de` as `fass.de`, another domain than IDNA 2008's.
DEVIATION_RCPT = "anna@faß.de"
ANSWER = (
    "From: gw@sms.example.com\r\nTo: undisclosed-recipients:;\r\nSubject: answer\r\n\r\nOdpowiedź: tak\r\n"
)
ASCII_MAIL = b"From: gw@sms.example.com\r\nTo: anna@acme.example\r\nSubject: hi\r\n\r\nhi\r\n"
EIGHT_BIT_BODY = "From: gw@sms.example.com\r\nTo: anna@acme.example\r\nSubject: hi\r\n\r\ncześć\r\n".encode()
UTF8_HEADERS = "From: gw@sms.example.com\r\nTo: anna@acme.example\r\nSubject: Zażółć\r\n\r\nhi\r\n".encode()


class RecordingRelay(Relay):
    """Takes every mail and keeps each MAIL's sender and parameters as the relay read them."""

    def __init__(self) -> None:
        super().__init__()
        self.mails: list[tuple[str, list[str]]] = []
        self.rcpts: list[str] = []

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.mails.append((address, list(options)))
        return await super().handle_MAIL(server, session, envelope, address, options)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.rcpts.append(address)
        return await super().handle_RCPT(server, session, envelope, address, options)


@asynccontextmanager
async def relay(*, smtputf8: bool) -> AsyncIterator[tuple[RecordingRelay, int]]:
    handler, port = RecordingRelay(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def mailer(port: int) -> SmtpRelayMailer:
    return SmtpRelayMailer(MailSection(relay=f"127.0.0.1:{port}"), "gw.example")


async def send(port: int, mail_from: str, rcpt: str, content: bytes) -> None:
    await asyncio.wait_for(mailer(port).send(mail_from, rcpt, content), 30)


async def outbox_send(
    tmp_path: Path, port: int, rcpt: str, content: bytes, kind: str = "premium-answer"
) -> tuple[str, int, str | None]:
    """The outbox worker's outcome for one mail of `kind` to the relay on `port`: its state, tries
    and last error once it left the queue (or after its second try, which a permanent failure never
    gets)."""
    now = [1_800_000_000.0]
    store = Store.open(tmp_path / "smsgw.db", clock=lambda: now[0])
    try:
        mail_id = store.outbox.enqueue_mail(kind, SENDER, rcpt, content)
        worker = OutboxWorker(store, mailer(port))
        task = asyncio.create_task(worker.run())
        query = "SELECT state, attempts, last_error FROM outbox WHERE id = ?"
        try:
            for _ in range(100):
                await asyncio.sleep(0.1)
                now[0] += 1.0
                row = store.db.conn.execute(query, (mail_id,)).fetchone()
                if row[0] not in ("queued", "active") or row[1] > 1:
                    break
        finally:
            await worker.stop()
            task.cancel()
        return row[0], row[1], row[2]
    finally:
        store.close()


async def test_an_answer_to_a_utf8_address_arrives_intact_through_smtputf8(tmp_path: Path) -> None:
    # aiosmtplib encoded the address as ASCII and raised: the mail was deferred for five days.
    async with relay(smtputf8=True) as (sink, port):
        assert await outbox_send(tmp_path, port, UTF8_RCPT, ANSWER.encode()) == ("sent", 1, None)
    assert sink.rcpts == [UTF8_RCPT]
    [(sender, options)] = sink.mails
    assert sender == SENDER
    assert "SMTPUTF8" in options and "BODY=8BITMIME" in options
    assert sink.taken == [ANSWER.encode()]


@pytest.mark.parametrize(
    ("mail_from", "rcpt", "content"),
    [
        ("", "zażółć@żółw.example", ASCII_MAIL),  # a DSN to a sender whose address is not ASCII
        ("zażółć@example.pl", "anna@acme.example", ASCII_MAIL),
        (SENDER, "anna@acme.example", UTF8_HEADERS),
        (SENDER, DEVIATION_RCPT, ASCII_MAIL),  # no A-label form here: sent as it is
    ],
    ids=["utf8-recipient", "utf8-sender", "utf8-headers", "deviation-domain"],
)
async def test_a_utf8_envelope_or_header_section_is_sent_with_smtputf8(
    mail_from: str, rcpt: str, content: bytes
) -> None:
    async with relay(smtputf8=True) as (sink, port):
        await send(port, mail_from, rcpt, content)
    [(sender, options)] = sink.mails
    assert (sender, sink.rcpts) == (mail_from or "<>", [rcpt])  # aiosmtpd reads the null sender so
    assert "SMTPUTF8" in options
    assert sink.taken == [content]


@pytest.mark.parametrize(
    ("mail_from", "rcpt", "content", "needed_for"),
    [
        (SENDER, UTF8_RCPT, ANSWER.encode(), UTF8_RCPT),
        ("zażółć@example.pl", "anna@acme.example", ASCII_MAIL, "the sender zażółć@example.pl"),
        (SENDER, "anna@acme.example", UTF8_HEADERS, "the mail's headers in UTF-8"),
    ],
    ids=["utf8-recipient", "utf8-sender", "utf8-headers"],
)
async def test_a_relay_without_smtputf8_refuses_such_a_mail_for_good_saying_why(
    mail_from: str, rcpt: str, content: bytes, needed_for: str
) -> None:
    async with relay(smtputf8=False) as (sink, port):
        with pytest.raises(PermanentMailError) as raised:
            await send(port, mail_from, rcpt, content)
    assert str(raised.value) == f"the relay does not offer SMTPUTF8, needed for {needed_for}"
    assert sink.mails == [] and sink.taken == []  # not even MAIL: the relay could not have read it


async def test_the_outbox_fails_a_utf8_mail_at_once_at_a_relay_without_smtputf8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tried again at once if it were deferred: a second try shows in the attempts.
    monkeypatch.setattr(outboxworker, "mail_retry_delay", lambda attempts: 0.05)
    async with relay(smtputf8=False) as (sink, port):
        outcome = await outbox_send(tmp_path, port, UTF8_RCPT, ANSWER.encode())
    assert outcome == ("failed", 1, f"the relay does not offer SMTPUTF8, needed for {UTF8_RCPT}")
    assert sink.mails == [] and sink.taken == []


@pytest.mark.parametrize("smtputf8", [True, False], ids=["relay-with-smtputf8", "relay-without"])
@pytest.mark.parametrize(
    ("content", "parameters"),
    [(ASCII_MAIL, []), (EIGHT_BIT_BODY, ["BODY=8BITMIME"])],
    ids=["ascii", "8bit-body"],
)
async def test_an_ascii_envelope_and_header_section_go_without_smtputf8(
    smtputf8: bool, content: bytes, parameters: list[str]
) -> None:
    # 8-bit bytes in the body alone need BODY=8BITMIME, not SMTPUTF8 (RFC 6152).
    async with relay(smtputf8=smtputf8) as (sink, port):
        await send(port, SENDER, "anna@acme.example", content)
    assert sink.mails == [(SENDER, [f"SIZE={len(content)}", *parameters])]
    assert sink.taken == [content]


@pytest.mark.parametrize("smtputf8", [True, False], ids=["relay-with-smtputf8", "relay-without"])
@pytest.mark.parametrize(
    ("mail_from", "rcpt", "sent_from", "sent_to"),
    [
        (SENDER, UTF8_DOMAIN_RCPT, SENDER, A_LABEL_RCPT),
        ("", "Jan@ŻÓŁW.example", "<>", "Jan@xn--w-uga1v8h.example"),  # a DSN; the local part is kept
        ("gw@sms.żółw.example", "anna@acme.example", "gw@sms.xn--w-uga1v8h.example", "anna@acme.example"),
    ],
    ids=["utf8-domain-recipient", "dsn-to-utf8-domain", "utf8-domain-sender"],
)
async def test_a_domain_alone_not_in_ascii_goes_in_a_labels_without_smtputf8(
    smtputf8: bool, mail_from: str, rcpt: str, sent_from: str, sent_to: str
) -> None:
    # It failed for good at a relay without SMTPUTF8, though RFC 5890 gives the domain an ASCII form;
    # a relay that offers SMTPUTF8 gets the ASCII form too, which every hop after it can carry.
    async with relay(smtputf8=smtputf8) as (sink, port):
        await send(port, mail_from, rcpt, ASCII_MAIL)
    assert sink.mails == [(sent_from, [f"SIZE={len(ASCII_MAIL)}"])]
    assert sink.rcpts == [sent_to]
    assert sink.taken == [ASCII_MAIL]


@pytest.mark.parametrize(
    "rcpt",
    [DEVIATION_RCPT, f"anna@{'ż' * 60}.example", "anna@żółw..example"],
    ids=["deviation", "label-too-long", "empty-label"],
)
async def test_a_domain_with_no_a_label_form_fails_at_once_at_a_relay_without_smtputf8(rcpt: str) -> None:
    async with relay(smtputf8=False) as (sink, port):
        with pytest.raises(PermanentMailError) as raised:
            await send(port, SENDER, rcpt, ASCII_MAIL)
    assert str(raised.value) == (
        f"the relay does not offer SMTPUTF8, needed for {rcpt}, whose domain has no IDNA A-label form"
    )
    assert sink.mails == [] and sink.taken == []


def _notice(rcpt: str) -> bytes:
    return notify.notice(
        sender=SENDER, rcpt=rcpt, domain="sms.example.com", subject="SMS limit reached", content="x\n"
    )


def _to_line(mail: bytes) -> bytes:
    return next(line for line in mail.split(b"\r\n") if line.startswith(b"To:"))


async def test_a_notice_to_a_utf8_domain_leaves_the_outbox_with_its_address_at_a_relay_without_smtputf8(
    tmp_path: Path,
) -> None:
    # It failed at once, and its To said undisclosed-recipients.
    async with relay(smtputf8=False) as (sink, port):
        outcome = await outbox_send(tmp_path, port, "jan@żółw.pl", _notice("jan@żółw.pl"))
    assert outcome == ("sent", 1, None)
    assert sink.rcpts == ["jan@xn--w-uga1v8h.pl"]
    [(_, options)] = sink.mails
    assert "SMTPUTF8" not in options
    [taken] = sink.taken
    assert _to_line(taken) == b"To: jan@xn--w-uga1v8h.pl"


async def test_a_notice_to_a_utf8_local_part_carries_it_in_to_through_smtputf8(tmp_path: Path) -> None:
    # RFC 6532: the address as it is, in UTF-8, where the mail goes with SMTPUTF8 anyway.
    async with relay(smtputf8=True) as (sink, port):
        outcome = await outbox_send(tmp_path, port, UTF8_RCPT, _notice(UTF8_RCPT))
    assert outcome == ("sent", 1, None)
    assert sink.rcpts == [UTF8_RCPT]
    [(_, options)] = sink.mails
    assert "SMTPUTF8" in options
    [taken] = sink.taken
    assert _to_line(taken) == f"To: {UTF8_RCPT}".encode()
