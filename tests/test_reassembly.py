"""Long MO texts: segments joined in order, duplicates once, gaps marked after the timeout (R-3.4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import reassembly
from gateway.store.db import Store
from smsc.cimd2.messages import parse_mo
from smsc.cimd2.packet import Op, P, Packet
from smsc.decoding import decode_user_data
from smsc.gsmalphabet import gsm_encode
from smsc.smpp.codec import ShortMessage, decode_sm
from smsc.smpp.pdu import inbound_sms
from tests.conftest import make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_smpp_codec import BASE, _framed, ours


def test_join_orders_segments_and_marks_gaps() -> None:
    # Arrival order and repeats do not matter; a missing segment shows as a visible gap.
    assert reassembly.join([(2, "b"), (1, "a"), (2, "b"), (3, "c")], 3) == "abc"
    assert reassembly.join([(1, "a"), (3, "c")], 3) == f"a {reassembly.gap(2, 2, 3)} c"
    assert not reassembly.complete([(1, "a"), (3, "c")], 3)


def test_store_joins_out_of_order_and_duplicate_segments(tmp_path: Path) -> None:
    # Three segments, one twice and out of order, give one whole MO once the set is complete.
    s = Store.open(tmp_path / "db.sqlite")
    assert s.mo.record_mo("l", "+48601123456", "+48100200300", "world", 0, (7, 3, 2)) is None
    assert s.mo.record_mo("l", "+48601123456", "+48100200300", "world", 0, (7, 3, 2)) is None
    assert s.mo.record_mo("l", "+48601123456", "+48100200300", "!", 0, (7, 3, 3)) is None
    mo = s.mo.record_mo("l", "+48601123456", "+48100200300", "hello ", 0, (7, 3, 1))
    assert mo is not None and s.mo.mo_text(mo)[:2] == ("+48601123456", "hello world!")
    # Same reference from another phone is another text.
    assert s.mo.record_mo("l", "+48601999999", "+48100200300", "x", 0, (7, 2, 1)) is None


def test_incomplete_set_is_joined_with_a_gap_after_the_timeout(tmp_path: Path) -> None:
    # Never dropped: after the timeout the segments that came are passed on with a gap marker.
    now = [1_700_000_000.0]
    s = Store.open(tmp_path / "db.sqlite", clock=lambda: now[0])
    s.mo.record_mo("l", "+48601123456", "+48100200300", "first ", 0, (9, 2, 1))
    assert s.mo.join_stale_segments(now[0] - reassembly.TIMEOUT_SECONDS) == []
    now[0] += reassembly.TIMEOUT_SECONDS + 1
    (mo,) = s.mo.join_stale_segments(now[0] - reassembly.TIMEOUT_SECONDS)
    assert s.mo.mo_text(mo)[1] == f"first  {reassembly.gap(2, 2, 2)}"


async def test_long_mo_through_the_smsc_is_stored_whole(tmp_path: Path) -> None:
    # A 200-character answer arrives as concatenated deliver_sm and is stored as one text.
    answer = "Dziękuję, będę na spotkaniu o 10:00. " * 6
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await smsc.inject_mo("+48601123456", "+48100200300", answer)
        whole = "FROM mo WHERE state NOT IN ('segment', 'joined')"  # a whole text, whatever became of it
        await gw.until(lambda: gw.store.db.conn.execute(f"SELECT COUNT(*) {whole}").fetchone()[0])
        rows = gw.store.db.conn.execute(f"SELECT text {whole}").fetchall()
        assert rows == [(answer,)]
        assert gw.store.db.conn.execute("SELECT COUNT(*) FROM mo WHERE state = 'joined'").fetchone()[0] > 1


def _deliver_sm(seq: int, data_coding: int, short_message: bytes, **tlvs: int) -> bytes:
    """A hand-made MO deliver_sm as an SMSC sends it: the phone's own cut, not the simulator's."""
    fields = dict(BASE, data_coding=data_coding, short_message=short_message, registered_delivery=0)
    if not tlvs:
        fields["esm_class"] = 0x40  # UDH indicator
    return _framed(ours("deliver_sm", **fields, **tlvs), seq)


@pytest.mark.parametrize(
    ("text", "data_coding", "cut", "sar"),
    [
        ("Super 😀 dzięki", 8, 14, False),  # the emoji's two UTF-16 halves in two segments
        ("Super 😀 dzięki", 8, 14, True),  # the same numbered by SAR TLVs instead of a UDH
        ("Cena 5€ za sztukę", 0, 7, False),  # the € escape's ESC ends segment 1, its code starts 2
    ],
)
async def test_a_character_a_phone_cut_between_two_segments_arrives_whole(
    tmp_path: Path, text: str, data_coding: int, cut: int, sar: bool
) -> None:
    # Segments are decoded and stored one by one; the cut half is kept for the join, which was
    # mailed as two U+FFFD (an emoji) or as a space and an `e` (€).
    raw = text.encode("utf-16-be") if data_coding == 8 else gsm_encode(text.replace("ę", "e"))
    halves = (raw[:cut], raw[cut:])
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await smsc.wait_until(lambda: bool(smsc.sessions))
        for n, half in ((2, halves[1]), (1, halves[0])):  # in any order
            if sar:
                tlvs = {"sar_msg_ref_num": 42, "sar_total_segments": 2, "sar_segment_seqnum": n}
                smsc.send_raw(_deliver_sm(90 + n, data_coding, half, **tlvs))
            else:
                smsc.send_raw(_deliver_sm(90 + n, data_coding, bytes((5, 0, 3, 42, 2, n)) + half))
        whole = "FROM mo WHERE state NOT IN ('segment', 'joined')"
        await gw.until(lambda: gw.store.db.conn.execute(f"SELECT COUNT(*) {whole}").fetchone()[0])
        rows = gw.store.db.conn.execute(f"SELECT text {whole}").fetchall()
    assert rows == [(text if data_coding == 8 else text.replace("ę", "e"),)]


def test_a_half_whose_other_half_never_came_is_a_replacement_character() -> None:
    # A set joined with a gap after the timeout: the lone half is no character of its own.
    first, _ = decode_user_data(bytes((5, 0, 3, 7, 2, 1)) + "Hi 😀".encode("utf-16-be")[:-2], 8, udhi=True)
    assert reassembly.join([(1, first)], 2) == f"Hi \ufffd {reassembly.gap(2, 2, 2)}"
    escape, _ = decode_user_data(bytes((5, 0, 3, 7, 2, 1)) + b"5\x1b", 0, udhi=True)
    # The lone escape is a space, as at a text's end; the gap is spaced off it as off any text.
    assert reassembly.join([(1, escape)], 2) == f"5  {reassembly.gap(2, 2, 2)}"


def test_private_use_characters_of_plane_16_are_no_markers_of_a_cut() -> None:
    # Cut halves and 8-bit octets are kept as plane 16's private use characters until the join; a
    # phone's own such characters were taken for them: "Kod: \U0010f641\U0010f642 ok" came out "Kod: AB ok".
    raw = "Kod: \U0010f641\U0010f642 ok".encode("utf-16-be")
    texts = []
    for seq, piece in ((1, raw[:8]), (2, raw[8:])):
        text, concat = decode_user_data(bytes((5, 0, 3, 9, 2, seq)) + piece, 8, udhi=True)
        assert concat is not None
        texts.append((concat.seq, text))
    assert reassembly.join(texts, 2) == "Kod: \ufffd\ufffd ok"


def test_a_cimd2_escape_cut_between_two_segments_arrives_whole() -> None:
    # CIMD2 carries GSM text in 033 as its own combinations: `_XX` is the escape, `e` after it is €.
    # A trailing escape was dropped, and the next segment's `e` read as a plain e.
    udh = "050003070201", "050003070202"
    first = Packet(Op.DELIVER, 1, [(P.DESTINATION, "7155"), (P.ORIGINATOR, "+48601123456"),
                                   (P.UDH, udh[0]), (P.USER_DATA, "Cena 5_XX")])  # fmt: skip
    second = Packet(Op.DELIVER, 3, [(P.DESTINATION, "7155"), (P.ORIGINATOR, "+48601123456"),
                                    (P.UDH, udh[1]), (P.USER_DATA, "e")])  # fmt: skip
    texts = []
    for packet in (first, second):
        mo = parse_mo(packet, link="op")
        assert not isinstance(mo, str) and mo.concat is not None
        texts.append((mo.concat.seq, mo.text))
    assert reassembly.join(texts, 2) == "Cena 5€"


@pytest.mark.parametrize(
    ("data_coding", "text", "charset"),
    [(6, "Привет", "iso8859_5"), (7, "שלום", "iso8859_8"), (0x0E, "안녕", "cp949")],
)
def test_an_mo_in_an_smpp_character_set_of_its_own_is_read_in_it(
    data_coding: int, text: str, charset: str
) -> None:
    # SMPP 3.4 5.2.19 gives these data_coding values character sets; 23.038's groups read them as
    # Latin-1 octets (`¿àØÒÕâ` for Привет).
    fields = {"data_coding": data_coding, "short_message": text.encode(charset)}
    mo = decode_sm(ours("deliver_sm", **BASE | fields))
    assert isinstance(mo, ShortMessage)
    assert inbound_sms(mo, mo.short_message, mo.esm_class).text == text
