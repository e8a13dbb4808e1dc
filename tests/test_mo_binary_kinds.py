"""The other kinds of MO a phone or SMSC sends, each mailed as the phone user wrote it (R-3): binary
in message_payload, a "set" of one part, GSM extension characters, a flash SMS, SMPP Latin-1, UCS-2
cut short, 255 parts. Over the built-in simulator (SMPP and CIMD2) to a real SMTP sink, as in
tests.test_mo_binary.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smsc.cimd2.charset import septets_to_cimd
from smsc.cimd2.packet import P
from smsc.encoding import concat_udh
from tests.test_mo_binary import body_of, cimd2_part, mailed, smpp_part


def other(tmp_path: Path) -> Path:
    """A second gateway's directory, beside the first's."""
    (tmp_path / "b").mkdir()
    return tmp_path / "b"


async def test_binary_in_message_payload_is_mailed_as_binary(tmp_path: Path) -> None:
    data = bytes(range(0xF0, 0x100)) * 20  # 320 octets: more than short_message holds
    part = dict(smpp_part(b"", 4), message_payload=data)
    body = body_of(await mailed(tmp_path, "smpp", [part]))
    assert body.startswith("[A binary SMS of 320 bytes, not text; in hex:]\nf0 f1 f2")
    assert body.count("\n") >= 20


async def test_a_set_of_one_part_is_whole_and_shows_no_marker(tmp_path: Path) -> None:
    # A concatenation UDH of 1/1 (some phones send one): read as a segment, its characters cut at an
    # edge were kept as markers for a join that never came, and reached the mail as private-use
    # characters; its octets, as the octets of a segment, as many more.
    cut = "a😀".encode("utf-16-be")[:-2]  # ends in a high surrogate
    body = body_of(await mailed(tmp_path, "smpp", [smpp_part(concat_udh(3, 1, 1) + cut, 8, 0x40)]))
    assert body.startswith("a\ufffd\n")
    body = body_of(
        await mailed(other(tmp_path), "smpp", [smpp_part(concat_udh(4, 1, 1) + b"\x01\x02", 4, 0x40)])
    )
    assert body.startswith("[A binary SMS of 2 bytes, not text; in hex:]\n01 02\n")


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_gsm_extension_characters_and_a_flash_sms_read_as_text(tmp_path: Path, protocol: str) -> None:
    # "€ [1]" with the escape table; DCS 0xF0 / 0x10 is class 0 (flash), still the GSM alphabet.
    septets = b"\x1be \x1b<1\x1b>"
    if protocol == "smpp":
        part = smpp_part(septets, 0x10)
        body = body_of(await mailed(tmp_path, "smpp", [part]))
    else:
        params = [*cimd2_part(b"", 0xF0)[:-1], (P.USER_DATA, septets_to_cimd(septets))]
        body = body_of(await mailed(tmp_path, "cimd2", [params]))
    assert body.startswith("€ [1]\n")


async def test_smpp_latin1_and_ucs2_of_odd_length(tmp_path: Path) -> None:
    body = body_of(
        await mailed(tmp_path, "smpp", [smpp_part("Zażółć? café".encode("latin-1", "replace"), 3)])
    )
    assert body.startswith("Za?ó??? café\n")
    data = "Cześć".encode("utf-16-be") + b"\x00"
    body = body_of(await mailed(other(tmp_path), "cimd2", [cimd2_part(data, 8)]))
    assert body.startswith("Cześć\ufffd\n")


async def test_a_text_of_255_parts_is_joined_and_mailed_whole(tmp_path: Path) -> None:
    text = "".join(f"{i:03d} " for i in range(255 * 38))[: 255 * 153]
    udhs = [concat_udh(77, 255, seq) for seq in range(1, 256)]
    parts = [smpp_part(udh + text[i * 153 : (i + 1) * 153].encode(), 0, 0x40) for i, udh in enumerate(udhs)]
    body = body_of(await mailed(tmp_path, "smpp", parts))
    assert body.startswith(text + "\n")
