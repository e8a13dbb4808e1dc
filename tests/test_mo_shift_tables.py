"""MOs whose UDH names a national language shift table (23.040 IEI 0x24 single shift, 0x25 locking
shift), as phones in Turkey, Spain and Portugal send them to save parts: read with 3GPP TS 23.038's
Annex A tables. Read with the default tables, a Turkish "Ğ" (single shift 0x47) reached the user as
"G" and "ı" (locking 0x07) as "ì", with nothing to say so. A table not here (the Indian ones, an id
23.038 does not define) is read with the default ones and the mail says so in one line.

The built-in simulator delivers each MO over SMPP or CIMD2 as an SMSC would; a real SMTP sink catches
the mail.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import gsm0338
import pytest

from smsc.cimd2.charset import septets_to_cimd
from smsc.cimd2.packet import P
from smsc.decoding import decode_user_data, mend_edges
from smsc.gsmalphabet import gsm_encode
from smsc.gsmshifts import LOCKING, SINGLE, Shifts, decode, shifts_of
from smsc.simulator.cimd2_texts import format_time
from tests.test_mo_binary import OURS, PHONE, body_of, mailed, smpp_part

TURKISH, SPANISH, PORTUGUESE, HINDI = 1, 2, 3, 6
ESC = 0x1B


def udh(
    *, locking: int | None = None, single: int | None = None, part: tuple[int, int] | None = None
) -> bytes:
    """A UDH (from its UDHL octet) with an 8-bit concatenation element for `part` (seq, total)."""
    body = b""
    if part is not None:
        body += bytes((0x00, 3, 0x5A, part[1], part[0]))
    if single is not None:
        body += bytes((0x24, 1, single))
    if locking is not None:
        body += bytes((0x25, 1, locking))
    return bytes((len(body),)) + body


@pytest.mark.parametrize(
    ("language", "code", "char"),
    [
        # A.3.1 Turkish locking shift
        (TURKISH, 0x04, "€"), (TURKISH, 0x07, "ı"), (TURKISH, 0x0B, "Ğ"), (TURKISH, 0x0C, "ğ"),
        (TURKISH, 0x1C, "Ş"), (TURKISH, 0x1D, "ş"), (TURKISH, 0x40, "İ"), (TURKISH, 0x60, "ç"),
        (TURKISH, 0x41, "A"), (TURKISH, 0x7F, "à"),
        # A.3.3 Portuguese locking shift
        (PORTUGUESE, 0x04, "ê"), (PORTUGUESE, 0x09, "ç"), (PORTUGUESE, 0x12, "ª"), (PORTUGUESE, 0x15, "∞"),
        (PORTUGUESE, 0x17, "\\"), (PORTUGUESE, 0x24, "º"), (PORTUGUESE, 0x40, "Í"), (PORTUGUESE, 0x5B, "Ã"),
        (PORTUGUESE, 0x60, "~"), (PORTUGUESE, 0x7B, "ã"), (PORTUGUESE, 0x7D, "`"),
    ],
)  # fmt: skip
def test_locking_shift_tables_hold_the_spec_code_points(language: int, code: int, char: str) -> None:
    assert LOCKING[language][code] == char
    assert decode(bytes((code,)), Shifts(locking=language)) == char


@pytest.mark.parametrize(
    ("language", "code", "char"),
    [
        # A.2.1 Turkish single shift
        (TURKISH, 0x47, "Ğ"), (TURKISH, 0x49, "İ"), (TURKISH, 0x53, "Ş"), (TURKISH, 0x63, "ç"),
        (TURKISH, 0x67, "ğ"), (TURKISH, 0x69, "ı"), (TURKISH, 0x73, "ş"), (TURKISH, 0x65, "€"),
        # A.2.3 Portuguese single shift
        (PORTUGUESE, 0x05, "ê"), (PORTUGUESE, 0x12, "Φ"), (PORTUGUESE, 0x1F, "Ê"), (PORTUGUESE, 0x41, "À"),
        (PORTUGUESE, 0x5C, "Õ"), (PORTUGUESE, 0x61, "Â"), (PORTUGUESE, 0x7F, "â"), (PORTUGUESE, 0x28, "{"),
    ],
)  # fmt: skip
def test_single_shift_tables_hold_the_spec_code_points(language: int, code: int, char: str) -> None:
    assert SINGLE[language][code] == char
    assert decode(bytes((ESC, code)), Shifts(single=language)) == char


def test_the_spanish_single_shift_table_is_the_one_gsm0338_has() -> None:
    theirs = {
        code: unicodedata.lookup(name) for code, name in gsm0338.SINGLE_SHIFT_CHARACTER_SET_SPANISH.items()
    }
    theirs[0x0A] = "\x0c"  # named FORM FEED, which unicodedata does not look up
    assert dict(SINGLE[SPANISH]) == theirs


def test_an_escape_the_single_shift_table_lacks_shows_the_locking_tables_character() -> None:
    # 23.038 6.2.1.1: the character of the locking shift table, where one is named.
    assert decode(bytes((ESC, 0x07, ESC, ESC, 0x41)), Shifts(locking=TURKISH, single=TURKISH)) == "ı A"


def test_the_last_of_two_elements_counts_and_one_of_the_wrong_length_is_ignored() -> None:
    body = bytes((0x24, 1, HINDI, 0x24, 1, TURKISH, 0x25, 2, PORTUGUESE, 0))
    assert shifts_of(bytes((len(body),)) + body) == Shifts(locking=0, single=TURKISH)
    assert shifts_of(udh(locking=PORTUGUESE, single=SPANISH)) == Shifts(locking=PORTUGUESE, single=SPANISH)


def test_a_ucs2_text_is_not_read_with_the_shift_tables() -> None:
    text, _ = decode_user_data(udh(locking=TURKISH) + "Gİ".encode("utf-16-be"), 8, udhi=True)
    assert text == "Gİ"


def test_segments_of_an_unsupported_alphabet_join_to_their_text_alone() -> None:
    # The store keeps the languages beside the text (`gateway.reassembly.joined_unread`), for the mail.
    parts = [udh(locking=HINDI, part=(seq, 2)) + gsm_encode(t) for seq, t in ((1, "ab "), (2, "cd"))]
    assert mend_edges("".join(decode_user_data(p, 0, udhi=True)[0] for p in parts)) == "ab cd"


async def test_a_turkish_mo_in_two_segments_over_smpp_reaches_the_user_with_its_letters(
    tmp_path: Path,
) -> None:
    # Each segment names the Turkish tables; the first ends with the ESC of an "Ş" whose code starts
    # the second (a phone's odd cut): joined, it is still an "Ş".
    one = (
        udh(locking=TURKISH, single=TURKISH, part=(1, 2))
        + bytes((ESC, 0x47))
        + gsm_encode("ece ")
        + bytes((ESC,))
    )
    two = (
        udh(locking=TURKISH, single=TURKISH, part=(2, 2)) + bytes((0x53,)) + gsm_encode("u ") + bytes((0x07,))
    )
    msg = await mailed(tmp_path, "smpp", [smpp_part(one, 0, 0x40), smpp_part(two, 0, 0x40)])
    assert body_of(msg).startswith("Ğece Şu ı\n")


async def test_a_portuguese_mo_over_smpp_reaches_the_user_with_its_letters(tmp_path: Path) -> None:
    data = bytes((0x4E, 0x7B, 0x6F, 0x20, ESC, 0x41, 0x20, 0x09, 0x24))  # "Não À çº"
    msg = await mailed(
        tmp_path, "smpp", [smpp_part(udh(locking=PORTUGUESE, single=PORTUGUESE) + data, 0, 0x40)]
    )
    assert body_of(msg).startswith("Não À çº\n")


async def test_a_hindi_mo_over_smpp_is_mailed_with_a_line_saying_its_alphabet_is_not_read(
    tmp_path: Path,
) -> None:
    msg = await mailed(
        tmp_path, "smpp", [smpp_part(udh(locking=HINDI, single=HINDI) + gsm_encode("Namaste"), 0, 0x40)]
    )
    # In the mail's note, not in the text the store keeps (tests/test_mo_alphabet_not_read.py).
    said = "The SMS used a national alphabet not supported here (Hindi): some letters may be wrong"
    assert body_of(msg).startswith("Namaste\n\n[") and body_of(msg).count(said) == 1


async def test_a_turkish_mo_over_cimd2_reaches_the_user_with_its_letters(tmp_path: Path) -> None:
    # CIMD2 carries the UDH in 032 and the GSM codes in 033's own spelling.
    params: list[tuple[int, str | int]] = [
        (P.DESTINATION, OURS.lstrip("+")), (P.ORIGINATOR, PHONE), (P.SCTS, format_time(datetime.now(UTC))),
        (P.UDH, udh(locking=TURKISH, single=TURKISH).hex().upper()), (P.DCS, 0),
        (P.USER_DATA, septets_to_cimd(bytes((ESC, 0x47, 0x07)) + gsm_encode("k ") + bytes((0x1C,)))),
    ]  # fmt: skip
    msg = await mailed(tmp_path, "cimd2", [params])
    assert body_of(msg).startswith("Ğık Ş\n")
