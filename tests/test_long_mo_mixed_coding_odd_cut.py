"""A long MO whose UCS-2 part ends at an odd octet and whose other part is GSM or 8-bit (each part has
its own DCS). The odd cut makes the UCS-2 octets after it one stream to be read again; the join read
the whole text so, the GSM or 8-bit part too, and mailed it as garbage ("栀攀氀氀漀" for "hello").
Only the UCS-2 parts are read as one stream now: the stray octet costs one U+FFFD. Each part decoded
as the link decodes it and stored in a real SQLite file, joined by the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.store.db import Store
from smsc.decoding import decode_user_data
from smsc.gsmalphabet import gsm_encode
from tests.test_store import Clock

PHONE = "+48601000111"
NUMBER = "+48100200300"


@pytest.mark.parametrize(
    ("second", "dcs"), [(gsm_encode("hello world"), 0), (b"hello world", 4)], ids=["gsm", "8-bit"]
)
def test_only_the_ucs2_part_is_realigned_after_its_odd_cut(tmp_path: Path, second: bytes, dcs: int) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    first, _ = decode_user_data("Zażółć ".encode("utf-16-be") + b"\x00", 8, segment=True)
    rest, _ = decode_user_data(second, dcs, segment=True)
    assert store.mo.record_mo("smpp", PHONE, NUMBER, first, 8, (77, 2, 1), protocol="smpp") is None
    whole = store.mo.record_mo("smpp", PHONE, NUMBER, rest, dcs, (77, 2, 2), protocol="smpp")
    assert whole is not None
    text = store.db.conn.execute("SELECT text FROM mo WHERE id = ?", (whole,)).fetchone()[0]
    assert text == "Zażółć \ufffdhello world", text


def test_two_ucs2_parts_cut_odd_are_still_read_as_one_stream(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    octets = "Zażółć gęślą jaźń".encode("utf-16-be")
    one, _ = decode_user_data(octets[:13], 8, segment=True)
    two, _ = decode_user_data(octets[13:], 8, segment=True)
    assert store.mo.record_mo("smpp", PHONE, NUMBER, one, 8, (78, 2, 1), protocol="smpp") is None
    whole = store.mo.record_mo("smpp", PHONE, NUMBER, two, 8, (78, 2, 2), protocol="smpp")
    assert whole is not None
    assert (
        store.db.conn.execute("SELECT text FROM mo WHERE id = ?", (whole,)).fetchone()[0]
        == "Zażółć gęślą jaźń"
    )
