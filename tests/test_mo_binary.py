"""MOs of every kind reach the mailbox with what the phone sent (R-3): 8-bit data, a header cut short,
a text of blank space. The built-in simulator delivers each over SMPP or CIMD2 as an SMSC would,
the gateway mails it (no SMS went to the phone, so to the fallback address), a real SMTP sink
catches the mail.

8-bit user data was read as Latin-1 and the mail body dropped its control characters: a phone's
binary SMS reached the user as "(the SMS was empty)" or as garbage, and its bytes were lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.config import parse_config
from smsc.cimd2.packet import P
from smsc.encoding import concat_udh
from smsc.simulator.cimd2_texts import format_time
from smsc.simulator.smpp_texts import address_fields
from tests.conftest import config_text, free_port, running_gateway, smtp_sink
from tests.test_two_way import parsed

OURS = "+48100200300"
PHONE = "+48601333444"
FALLBACK = "ops@acme.example"
VCARD = "BEGIN:VCARD\r\nVERSION:2.1\r\nN:Żółć;Jan\r\nTEL;CELL:+48601333444\r\nEND:VCARD\r\n"
PORT_9204 = bytes((0x05, 0x04, 0x23, 0xF4, 0x00, 0x00))  # 16-bit application ports IE, to 9204


def binary_config(tmp_path: Path, protocol: str, relay: int) -> Any:
    smpp, cimd2, control = free_port(), free_port(), free_port()
    text = config_text(
        tmp_path,
        smsc_port=cimd2 if protocol == "cimd2" else smpp,
        relay_port=relay,
        extra=f'\n[replies]\nfallback_address = "{FALLBACK}"\n',
    )
    text = text.replace('type = "smpp"', f'type = "{protocol}"').replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    return parse_config(text, source="test", base_dir=tmp_path)


async def mailed(tmp_path: Path, protocol: str, parts: list[Any]) -> EmailMessage:
    """The mail of the MO the simulator delivers as `parts` (deliver_sm fields, or 20's parameters)."""
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(binary_config(tmp_path, protocol, relay)) as gw:
        core = gw.daemon.simulator.core
        await gw.until(lambda: core._pick(protocol) is not None)
        session = core._pick(protocol)
        for part in parts:
            await session.send_part(tuple(part.items()) if isinstance(part, dict) else tuple(part))
        await sink.wait(1)
        assert sink.messages[0][1] == [FALLBACK]
        return parsed(sink.messages[0][2])


def smpp_part(data: bytes, data_coding: int, esm_class: int = 0) -> dict[str, Any]:
    fields = address_fields(PHONE, OURS)
    return dict(fields, esm_class=esm_class, data_coding=data_coding, short_message=data)


def cimd2_part(data: bytes, dcs: int, udh: bytes = b"") -> list[tuple[int, str | int]]:
    params: list[tuple[int, str | int]] = [
        (P.DESTINATION, OURS.lstrip("+")), (P.ORIGINATOR, PHONE), (P.SCTS, format_time(datetime.now(UTC))),
    ]  # fmt: skip
    if udh:
        params.append((P.UDH, udh.hex().upper()))
    return [*params, (P.DCS, dcs), (P.USER_DATA_BINARY, data.hex().upper())]


def body_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_a_vcard_a_phone_sends_reaches_the_user_as_text_and_as_a_vcf(tmp_path: Path) -> None:
    # A phone's "send contact": 8-bit data to port 9204, two segments, UTF-8 with a letter cut
    # between them. Read as Latin-1, its "Ż" came as "Å»", and the user had no card to open.
    data = VCARD.encode()
    cut = data.index("ó".encode()) + 1  # inside the "ó"
    udh = [bytes((11,)) + PORT_9204 + concat_udh(9, 2, seq)[1:] for seq in (1, 2)]
    parts = [smpp_part(udh[0] + data[:cut], 4, 0x40), smpp_part(udh[1] + data[cut:], 4, 0x40)]
    msg = await mailed(tmp_path, "smpp", parts)
    assert body_of(msg).startswith(VCARD.replace("\r\n", "\n"))
    [card] = [p for p in msg.iter_attachments()]
    assert (card.get_content_type(), card.get_filename()) == ("text/vcard", "contact.vcf")
    assert "N:Żółć;Jan" in card.get_content()


@pytest.mark.parametrize(("data_coding", "esm_class"), [(2, 0), (4, 0x40), (0xF6, 0)])
async def test_a_binary_sms_over_smpp_is_mailed_as_binary_with_its_bytes(
    tmp_path: Path, data_coding: int, esm_class: int
) -> None:
    # A WAP push, an OTA setting: octets that are no text. The user got an empty answer.
    data = bytes((0x01, 0x06, 0x04, 0x03, 0xAE, 0x81, 0xEA, 0x00, 0x1F, 0x10, 0x8D, 0x0A))
    udh = bytes.fromhex("0605040b8423f0") if esm_class else b""  # WAP push: to port 2948
    msg = await mailed(tmp_path, "smpp", [smpp_part(udh + data, data_coding, esm_class)])
    body = body_of(msg)
    assert body.startswith(
        "[A binary SMS of 12 bytes, not text; in hex:]\n01 06 04 03 ae 81 ea 00 1f 10 8d 0a\n"
    )
    assert "(the SMS was empty)" not in body


async def test_a_binary_sms_over_cimd2_with_an_8bit_dcs_is_mailed_as_binary(tmp_path: Path) -> None:
    # CIMD2's 030 is the DCS: 0xF5 is the 8-bit class 1. Its 034 octets were read as Latin-1.
    data = bytes(range(0x00, 0x14))
    msg = await mailed(tmp_path, "cimd2", [cimd2_part(data, 0xF5)])
    hexed = "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f\n10 11 12 13"
    assert body_of(msg).startswith(f"[A binary SMS of 20 bytes, not text; in hex:]\n{hexed}\n")


async def test_a_vcalendar_over_cimd2_group_00_8bit_is_text_and_a_vcs(tmp_path: Path) -> None:
    event = (
        "BEGIN:VCALENDAR\r\nVERSION:1.0\r\nBEGIN:VEVENT\r\nSUMMARY:Spotkanie\r\nEND:VEVENT\r\nEND:VCALENDAR"
    )
    msg = await mailed(tmp_path, "cimd2", [cimd2_part(event.encode(), 0x04, b"\x06\x05\x04\x23\xf5\x00\x00")])
    assert body_of(msg).startswith(event.replace("\r\n", "\n") + "\n")
    [card] = [p for p in msg.iter_attachments()]
    assert (card.get_content_type(), card.get_filename()) == ("text/x-vcalendar", "event.vcs")


async def test_a_header_cut_short_is_mailed_as_damaged_not_as_letters(tmp_path: Path) -> None:
    # UDHI set, a concatenation UDH of 5 octets announced and 3 there: read as text it came out as
    # "é@¥" (GSM), garbage the user could not tell from an answer.
    msg = await mailed(tmp_path, "smpp", [smpp_part(b"\x05\x00\x03\x2a", 0, 0x40)])
    body = body_of(msg)
    assert body.startswith("[The SMS came damaged: its header (UDH) claims 5 octets after the first,")
    assert "05 00 03 2a" in body and "é@¥" not in body


async def test_a_text_with_udhi_set_by_mistake_is_still_its_text(tmp_path: Path) -> None:
    msg = await mailed(tmp_path, "smpp", [smpp_part(b"Tak, jutro", 0, 0x40)])
    assert body_of(msg).startswith("Tak, jutro\n")


async def test_an_sms_of_blank_space_says_so(tmp_path: Path) -> None:
    msg = await mailed(tmp_path, "smpp", [smpp_part(b"  \n ", 0)])
    assert body_of(msg).startswith("(the SMS held only blank space)\n")
