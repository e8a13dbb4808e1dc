"""Two short cuts of a receipt's reading (`smsc.receipts`): a done date read before is given again
(`parse_receipt_date` keeps the last ones), and an id the TLV and the text both give is keyed once.
Each must give what the full reading gives: the date strptime's own reading, the key the comparison
of both keyings chose. The receipt's answer is written by `encode_resp` itself, as `encode` wrote it."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from smpplib import command_codes

from smsc import receipts
from smsc.receipts import parse_receipt, parse_receipt_date
from smsc.smpp import deliveries
from smsc.smpp.codec import encode, encode_resp
from smsc.smpp.pdu import normalise_message_id


def strptime_reading(value: str | None) -> datetime | None:
    """What a receipt's done date means: strptime's reading of its digits, in UTC."""
    if not value or not value.isdigit() or len(value) not in (10, 12):
        return None
    fmt = "%y%m%d%H%M%S" if len(value) == 12 else "%y%m%d%H%M"
    try:
        return datetime.strptime(value, fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


def test_dates_read_again_are_the_dates_read_first() -> None:
    rng = random.Random(20261206)
    values = ["2612061433", "261206143359", "2513991431", "2502301200", "0002291200", "9912312359",
              "261206143360", "", "12345", "٢٦١٢٠٦١٤٣٣", "2612061433 ", "abcdefghij"]  # fmt: skip
    values += ["".join(rng.choices("0123456789", k=rng.choice((10, 12)))) for _ in range(300)]
    values += [f"2612{d:02d}{h:02d}{m:02d}" for d in (1, 31) for h in (0, 23) for m in (0, 59)]
    # Read in a random order, each many times: the first reading and the ones kept must agree, also
    # once the kept dates were let go (more than `_DATES_KEPT` values).
    for value in rng.choices(values, k=5_000):
        assert parse_receipt_date(value) == strptime_reading(value), value
        assert len(receipts._DATES) <= receipts._DATES_KEPT
    assert parse_receipt_date(None) is None


def test_a_date_kept_is_the_same_moment_with_its_zone() -> None:
    first = parse_receipt_date("2612061433")
    again = parse_receipt_date("2612061433")
    assert again == first == datetime(2026, 12, 6, 14, 33, tzinfo=UTC)
    assert again is not None and again.tzinfo is UTC


Key = Callable[[str], str]


def full_key(tlv_id: str | None, text_id: str | None, normalise: Key, normalise_tlv: Key) -> str:
    """`_message_key` as it was written before the short cut: every case through the comparison."""
    if not tlv_id:
        return normalise(text_id) if text_id else ""
    if text_id:
        key = normalise(text_id)
        if normalise(tlv_id) == key:
            return key
    return normalise_tlv(tlv_id)


IDS = ["1A", "00ff", "0", "", "255", "FF", "0x1f", " 42 ", "abc", "0000", "123456789", "7fffffff"]


@pytest.mark.parametrize("mode", ["as_is", "hex_to_dec", "dec_to_hex"])
def test_the_key_is_the_one_the_comparison_chose(mode: str) -> None:
    def normalise(raw: str) -> str:
        return normalise_message_id(raw, mode, receipt=True)

    def normalise_tlv(raw: str) -> str:
        return normalise_message_id(raw, mode, receipt=False)

    for tlv_id in [*IDS, None]:
        for text_id in [*IDS, None]:
            got = receipts._message_key(tlv_id, text_id, normalise, normalise_tlv)
            assert got == full_key(tlv_id, text_id, normalise, normalise_tlv), (mode, tlv_id, text_id)


@pytest.mark.parametrize("mode", ["as_is", "hex_to_dec", "dec_to_hex"])
def test_a_receipt_naming_its_id_twice_is_keyed_as_its_text(mode: str) -> None:
    # The SMSC writes the same id in the TLV and the text: converted as the submit answer's id it
    # would miss its part when the link converts ids (hex_to_dec: "1a" would become "26").
    text = b"id:1A sub:001 dlvrd:001 submit date:2612061433 done date:2612061433 stat:DELIVRD err:000 text:"
    report = parse_receipt(
        short_message=text,
        tlvs={"receipted_message_id": "1A", "message_state": 2},
        normalise=lambda raw: normalise_message_id(raw, mode, receipt=True),
        normalise_tlv=lambda raw: normalise_message_id(raw, mode, receipt=False),
    )
    assert report is not None and report.message_id == "1a"


@pytest.mark.parametrize("status", [0, 0x64, 0x08])
@pytest.mark.parametrize("name", ["deliver_sm", "data_sm"])
def test_a_deliverys_answer_is_the_pdu_encode_writes(name: str, status: int) -> None:
    code = deliveries._RESPONSES[name]
    assert code == command_codes.commands[name + "_resp"]
    for seq in (1, 0x7FFFFFFF):
        assert encode_resp(code, seq, status) == encode(code, seq, status)
