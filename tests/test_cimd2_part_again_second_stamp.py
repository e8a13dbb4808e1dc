"""A part of a long MO that the SMSC delivers again on its next connection, under the 060 it gave it to
the second, after our 70 to it was read: the SMSC's copy, not a new SMS, even where its set was mailed
with a gap (`gateway.store.segmentrepeats._to_the_second`). It was mailed a second time, alone:
"[parts 1-2 of 3 missing] ...". Under a minute stamp it stays the phone's next SMS
(`tests/test_cimd2_long_mo_minute_stamps.py`). The daemon over CIMD2 to a scripted SMSC, real SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import housekeeping
from gateway.reassembly import TIMEOUT_SECONDS
from smsc.cimd2.packet import Op, P, Packet, encode
from tests.fakes.cimd2 import ScriptedSmsc
from tests.test_cimd2_long_mo_minute_stamps import PARTS_ACKED, all_joined
from tests.test_cimd2_long_mo_stamps import FIRST
from tests.test_cimd2_mo_repeat import logged_in_again, premium_cimd2
from tests.test_mo_redelivery import PHONE

THIRD = " Trzecia czesc."
SECONDS_STAMP = "261206120017"


def part_of_three(number: int, seq: int, text: str) -> Packet:
    udh = f"0500037803{seq:02X}"  # reference 0x78, part `seq` of 3
    return Packet.make(Op.DELIVER, number, (P.DESTINATION, "7355"), (P.ORIGINATOR, PHONE),
                       (P.SCTS, SECONDS_STAMP), (P.UDH, udh), (P.USER_DATA, text))  # fmt: skip


async def test_a_part_the_smsc_delivers_again_after_its_gap_was_mailed_is_not_mailed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 0.05)
    ahead = [0.0]
    async with ScriptedSmsc() as smsc, premium_cimd2(tmp_path, ahead, smsc) as (gw, conn, acks, sink):
        db = gw.store.db.conn
        conn.send(encode(part_of_three(2, 1, FIRST)) + encode(part_of_three(4, 3, THIRD)))
        await gw.until(lambda: db.execute(PARTS_ACKED).fetchone()[0] == 2)  # our 70s read
        ahead[0] += TIMEOUT_SECONDS + 1  # part 2 never comes: mailed with its gap
        await all_joined(gw)
        acks.task.cancel()
        again, acks = await logged_in_again(smsc, conn)
        try:
            ahead[0] += 5
            again.send(encode(part_of_three(2, 3, THIRD)))
            await gw.until(lambda: acks.numbers == [2])
            ahead[0] += TIMEOUT_SECONDS + 1
            await all_joined(gw)
        finally:
            acks.task.cancel()
        whole = [s for (s,) in db.execute("SELECT state FROM mo WHERE concat_seq IS NULL ORDER BY id")]
        parts = [s for (s,) in db.execute("SELECT state FROM mo WHERE concat_seq IS NOT NULL ORDER BY id")]
        assert whole == ["premium"]
        assert parts == ["joined", "joined", "duplicate"]
        assert len(sink.messages) == 2  # the service's confirmation and the vote with its gap
