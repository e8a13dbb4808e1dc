"""A 060 an SMSC writes padded with blanks or with the year in full still names the SMS. Read as no
time, an MO the SMSC delivered again after its acknowledgement had lost the stamp that tells a copy
from a new SMS, and was mailed and charged twice. The protocol's time is 12 digits (protocols.md): a
field of another length still reads as none (a zone after the digits is read:
`test_cimd2_zoned_stamps`). Against the real daemon and a scripted SMSC over TCP.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from smsc.cimd2 import times
from smsc.cimd2.messages import parse_mo
from smsc.cimd2.packet import Op, P, Packet, encode
from smsc.cimd2.times import parse_time, stamp_digits
from tests.test_cimd2_mo_repeat import OTHER, deliver, premium_cimd2, settled
from tests.test_mo_redelivery import CLIENT, PHONE, acks_recorded, charges, first_lines


@pytest.mark.parametrize("stamp", [" 261203120000", "261203120000 ", "20261203120000"])
async def test_a_vote_delivered_again_after_its_ack_with_an_odd_060_is_one_charge(
    tmp_path: Path, stamp: str
) -> None:
    ahead = [0.0]
    async with premium_cimd2(tmp_path, ahead) as (gw, conn, acks, sink):
        vote = deliver(4, PHONE, "KP123 A", stamp)
        conn.send(encode(vote) + encode(deliver(2, OTHER, "KP123 B", "261203120001")))
        await gw.until(lambda: acks_recorded(gw.store.db.conn, 2))
        ahead[0] += 200  # its acknowledgement read minutes before: only the stamp names it
        conn.send(vote)
        await gw.until(lambda: acks.numbers == [4, 2, 4])
        await settled(gw, 3)
        states = [s for (s,) in gw.store.db.conn.execute("SELECT state FROM mo ORDER BY id")]
        assert states == ["premium", "premium", "duplicate"]
        assert charges(gw.config.db_path) == [("A", 300), ("B", 300)]
        assert first_lines(sink, CLIENT) == ["A", "B"]
        stamps = [s for (s,) in gw.store.db.conn.execute("SELECT smsc_time FROM mo ORDER BY id")]
        assert stamps[0] == stamps[2] == "261203120000"


def test_a_060_is_read_as_its_12_digits() -> None:
    at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    for value in ("261203120000", " 261203120000", "261203120000 ", "20261203120000", "\t261203120000"):
        assert stamp_digits(value) == "261203120000" and parse_time(value) == at
    assert stamp_digits("19991231235959") == "991231235959"
    for value in (
        None,
        "",
        "  ",
        "2612031200",
        "261203120000+4",
        "26120312000000",
        "261303120000",
        "x" * 12,
    ):
        assert stamp_digits(value) is None and parse_time(value) is None


def test_an_mo_with_a_padded_060_carries_its_12_digits_for_the_gateway() -> None:
    packet = Packet.make(Op.DELIVER, 2, (P.DESTINATION, "7355"), (P.ORIGINATOR, PHONE),
                         (P.SCTS, "20261203120000 "), (P.USER_DATA, "KP123 A"))  # fmt: skip
    sms = parse_mo(packet, link="main")
    assert not isinstance(sms, str)
    assert sms.raw["smsc_time"] == "261203120000"
    assert sms.received_at == datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_an_mo_s_060_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Checked, then read twice more (its digits, then the time), every MO's 060 was parsed three times:
    # nearly a third of reading a deliver. No peer can count the parses: the parser is wrapped.
    parsed: list[str] = []

    class Counted(datetime):
        @classmethod
        def strptime(cls, date_string: str, format: str) -> datetime:
            parsed.append(date_string)
            return datetime.strptime(date_string, format)

    monkeypatch.setattr(times, "datetime", Counted)
    sms = parse_mo(deliver(2, PHONE, "A", " 20261203120000"), link="main")
    assert not isinstance(sms, str)
    assert sms.received_at == datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert sms.raw["smsc_time"] == "261203120000"
    assert parsed == ["261203120000"]
