"""A mail to postmaster whose Subject is raw 8-bit, as SMTPUTF8 clients (and many scripts) write it,
reaches the admin address with its subject readable, in the forward's Subject and in its summary.

It arrived as "Za��������…": the header was read through compat32, which turns raw bytes into an
unknown-8bit header. A real smtplib client sends to the running gateway over SMTP; an SMTP sink
plays the outgoing mail relay.
"""

from __future__ import annotations

import asyncio
import smtplib
from email import message_from_bytes, policy
from pathlib import Path

from tests.conftest import DOMAIN, STAFF, free_port, running_gateway, smtp_sink
from tests.test_spec_smtp_postmaster import ADMIN, config

TITLE = "Mail to postmaster received by the SMS gateway: "


def letter(subject: bytes, charset: str) -> bytes:
    return (
        f"From: {STAFF}\r\nTo: postmaster@{DOMAIN}\r\nMessage-ID: <pm-utf8@acme.example>\r\n".encode()
        + b"Subject: "
        + subject
        + f"\r\nContent-Type: text/plain; charset={charset}\r\n".encode()
        + b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        + "Dzień dobry, nasza poczta wraca.\r\n".encode(charset)
    )


def send(port: int, raw: bytes, options: tuple[str, ...]) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("mx.acme.example")
        assert c.mail(STAFF, list(options))[0] == 250
        assert c.rcpt(f"postmaster@{DOMAIN}")[0] == 250
        code, text = c.data(raw)
        return f"{code} {text.decode()}"


async def forwarded(tmp_path: Path, raw: bytes, options: tuple[str, ...] = ()) -> tuple[str, str, str]:
    """The forward's Subject, its text, and the subject the mail was recorded with."""
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(config(tmp_path, relay)) as gw:
        said = await asyncio.wait_for(asyncio.to_thread(send, gw.port, raw, options), 60)
        assert said.startswith("250 2.0.0 OK: recorded, not sent as SMS"), said
        await sink.wait(1)
        recorded = gw.store.db.conn.execute("SELECT subject FROM emails").fetchone()[0]
    [(mail_from, rcpts, content)] = sink.messages
    assert (mail_from, rcpts) == ("<>", [ADMIN])
    msg = message_from_bytes(content, policy=policy.default)
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    return str(msg["Subject"]).strip(), text, recorded


async def test_a_raw_utf8_subject_reaches_the_admin_readable(tmp_path: Path) -> None:
    # Folded, as a long header is: the fold is a space, not a break.
    subject = "Zażółć gęślą\r\n jaźń".encode()
    title, text, recorded = await forwarded(tmp_path, letter(subject, "utf-8"), ("SMTPUTF8",))
    assert title == TITLE + "Zażółć gęślą jaźń", title
    assert "Subject: Zażółć gęślą jaźń\n" in text, text
    assert recorded == "Zażółć gęślą jaźń"


async def test_a_raw_latin2_subject_is_read_in_the_charset_its_body_declares(tmp_path: Path) -> None:
    # A client writing 8-bit headers raw writes them in its body's charset (windows-1250 misreads ś, ą).
    subject = "Gęś i ślązaczka".encode("iso-8859-2")
    title, text, _ = await forwarded(tmp_path, letter(subject, "iso-8859-2"))
    assert title == TITLE + "Gęś i ślązaczka", title
    assert "Subject: Gęś i ślązaczka\n" in text, text
