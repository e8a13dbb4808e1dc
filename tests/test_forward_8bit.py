"""A bounce forwarded to the fallback address is a mail the relay may take, whatever the relay offers.

An original with 8-bit text in its body went as message/rfc822 with `Content-Transfer-Encoding:
8bit`, sent with no BODY=8BITMIME to a relay that did not offer 8BITMIME (RFC 6152 3); one with
UTF-8 headers went as message/rfc822 (RFC 6532 3.7 wants message/global) to a relay without
SMTPUTF8. Now such an original goes base64 as the file bounce.eml where it cannot travel as it
is, and a 7-bit original (or an 8-bit body to a relay with 8BITMIME) stays message/rfc822.

A real SMTP client sends the bounce to the running gateway; a real aiosmtpd relay takes the
forward, one of them with 8BITMIME and SMTPUTF8 taken out of its EHLO.
"""

from __future__ import annotations

import asyncio
import smtplib
from email import message_from_bytes, message_from_string, policy
from pathlib import Path
from typing import Any

from tests.conftest import DOMAIN, Sink, free_port, make_config, running_gateway, smtp_sink
from tests.test_bounces import FALLBACK, RCPT, WITH_FALLBACK, bounce

# An SMTPUTF8 bounce: its From, and so its header section, is UTF-8 (RFC 6532).
UTF8_HEADERS = (
    f"From: Poczta Żółw <MAILER-DAEMON@żółw.pl>\r\nTo: {RCPT}\r\nSubject: Zwrot\r\n"
    "Message-ID: <b8b@mx.acme.example>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nŹle.\r\n"
).encode()


class Relay(Sink):
    """The relay, keeping each mail's MAIL parameters; `seven_bit`: without 8BITMIME and SMTPUTF8."""

    def __init__(self, seven_bit: bool) -> None:
        super().__init__()
        self.seven_bit = seven_bit
        self.options: list[list[str]] = []

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if not self.seven_bit:
            return responses
        return [r for r in responses if "8BITMIME" not in r and "SMTPUTF8" not in r]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.options.append(list(envelope.mail_options))
        return await super().handle_DATA(server, session, envelope)


def send_bounce(port: int, raw: bytes, options: list[str]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("mx.acme.example")
        assert c.mail("", options)[0] == 250
        assert c.rcpt(RCPT)[0] == 250
        assert c.data(raw)[0] == 250


async def forward_of(
    tmp_path: Path, raw: bytes, *, seven_bit: bool, options: list[str], polish: bool = False
) -> tuple[bytes, list[str]]:
    """The forward of the bounce `raw` as the relay got it, and its MAIL parameters."""
    port = free_port()
    relay = Relay(seven_bit)
    language = {"language": "pl"} if polish else {}
    config = make_config(tmp_path, smsc_port=1, relay_port=port, extra=WITH_FALLBACK, **language)
    async with smtp_sink(port, relay), running_gateway(config) as gw:
        await asyncio.wait_for(asyncio.to_thread(send_bounce, gw.port, raw, options), 60)
        await relay.wait(1)
    [(mail_from, rcpts, content)] = relay.messages
    assert (mail_from, rcpts) == ("<>", [FALLBACK])
    return content, relay.options[0]


def attachment_of(content: bytes) -> Any:
    """The forward's one attachment; the forward read by the strict parser, finding no defect."""
    msg = message_from_bytes(content, policy=policy.strict)
    assert not msg.defects and all(not part.defects for part in msg.walk())
    (attached,) = list(msg.iter_attachments())
    assert attached.get_filename() == "bounce.eml"
    return attached


def assert_seven_bit(content: bytes) -> None:
    """What a relay without 8BITMIME may take: ASCII, no line over 998 octets (RFC 5321 2.4)."""
    assert content.isascii(), [line for line in content.splitlines() if not line.isascii()][:3]
    assert max(len(line) for line in content.splitlines()) <= 998


async def test_an_8bit_original_goes_as_a_base64_file_to_a_relay_without_8bitmime(tmp_path: Path) -> None:
    content, options = await forward_of(tmp_path, bounce(), seven_bit=True, options=["BODY=8BITMIME"])
    assert_seven_bit(content)
    assert not any(o.upper().startswith("BODY=") for o in options) and "SMTPUTF8" not in options
    attached = attachment_of(content)
    assert attached.get_content_type() == "application/octet-stream"
    assert attached["Content-Transfer-Encoding"] == "base64"
    assert attached.get_content() == bounce()  # the original, byte for byte, CRLF and all


async def test_an_8bit_original_stays_inline_on_a_relay_with_8bitmime(tmp_path: Path) -> None:
    content, options = await forward_of(tmp_path, bounce(), seven_bit=False, options=["BODY=8BITMIME"])
    assert "BODY=8BITMIME" in options
    attached = message_from_bytes(content, policy=policy.default).get_payload()[1]
    assert attached.get_content_type() == "message/rfc822"
    assert attached["Content-Transfer-Encoding"] == "8bit"
    assert bounce().replace(b"\r\n", b"\n") in content.replace(b"\r\n", b"\n")


async def test_an_original_with_utf8_headers_goes_as_a_base64_file_on_any_relay(tmp_path: Path) -> None:
    for seven_bit in (False, True):
        where = tmp_path / str(seven_bit)
        where.mkdir()
        content, options = await forward_of(
            where, UTF8_HEADERS, seven_bit=seven_bit, options=["BODY=8BITMIME", "SMTPUTF8"]
        )
        assert_seven_bit(content)  # no UTF-8 header in a message/rfc822, for a relay without SMTPUTF8
        assert "SMTPUTF8" not in options and not any(o.upper().startswith("BODY=") for o in options)
        attached = attachment_of(content)
        assert attached.get_content_type() == "application/octet-stream"
        assert attached.get_content() == UTF8_HEADERS
        inner = message_from_string(attached.get_content().decode(), policy=policy.default)
        assert inner["From"].addresses[0].display_name == "Poczta Żółw"


async def test_a_polish_forward_of_a_7bit_original_is_all_7bit(tmp_path: Path) -> None:
    # The forward's own text in Polish is quoted-printable (it was left to the email package, which
    # writes 8bit text of short lines); the 7-bit original stays message/rfc822.
    plain = bounce().replace("Zażółć gęślą jaźń.".encode(), b"Zazolc gesla jazn.")
    assert plain.isascii()
    content, _options = await forward_of(tmp_path, plain, seven_bit=True, options=[], polish=True)
    assert_seven_bit(content)
    msg = message_from_bytes(content, policy=policy.default)
    assert "Bramka SMS otrzymała" in msg.get_body(("plain",)).get_content()
    attached = msg.get_payload()[1]
    assert attached.get_content_type() == "message/rfc822"
    assert plain.replace(b"\r\n", b"\n") in content.replace(b"\r\n", b"\n")
    assert DOMAIN in attached.get_payload()[0]["To"]
