"""The late part of a three-part answer over CIMD2 (R-3.4), judged by the stamps of the parts mailed
before it as a set that still waited judges a part: within 5 minutes of its SMS's last part and in
the order of the places, not by its first part's stamp alone.

Defect: once the timeout had mailed parts 1 and 2 (stamped 0 s and 25 s), part 3 stamped 320 s
(295 s after part 2, in order; a waiting set takes it) went out as an answer of its own to whoever
had texted the phone since, as it lay over 5 minutes from part 1; and with parts 1 and 3 mailed, a
part 2 stamped after part 3 (a waiting set refuses it: the phone sends its parts in order) was taken
for their SMS's late part. The daemon runs against a scripted CIMD2 SMSC over TCP with its clock
ahead of the real one.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.reassembly import TIMEOUT_SECONDS
from smsc.cimd2.packet import Op, P, Packet, encode
from tests.conftest import STAFF, Running
from tests.test_cimd2_late_part_sent_apart import BOB, body, stamp, texted
from tests.test_cimd2_report_keys import gateway_and_smsc
from tests.test_mo_redelivery import PHONE, SENDER

TEXTS = {1: "Tak, bedziemy o dziesiatej, ale prosze", 2: " przygotowac sale na pietrze,", 3: " i kawe."}


def part(number: int, seq: int, at: int) -> Packet:
    """Part `seq` of 3 of the phone's answer under reference 0x32, stamped `at` s after 12:00:00."""
    udh = f"0500033203{seq:02X}"
    return Packet.make(Op.DELIVER, number, (P.DESTINATION, SENDER), (P.ORIGINATOR, PHONE),
                       (P.SCTS, stamp(at)), (P.UDH, udh), (P.USER_DATA, TEXTS[seq]))  # fmt: skip


async def joined(gw: Running, ahead: list[float], waiting: int, whole: int) -> None:
    """The `waiting` parts just delivered stored, the reassembly timeout passes: the housekeeping
    joins them, `whole` texts stored then."""
    segments = "SELECT COUNT(*) FROM mo WHERE state = 'segment'"
    await gw.until(lambda: gw.store.db.conn.execute(segments).fetchone()[0] == waiting)
    ahead[0] += TIMEOUT_SECONDS + 1
    await gw.daemon.housekeeping.expire()
    found = "SELECT COUNT(*) FROM mo WHERE state NOT IN ('segment', 'joined')"
    await gw.until(lambda: gw.store.db.conn.execute(found).fetchone()[0] == whole)


async def answered(
    tmp_path: Path, mailed: dict[int, int], late: tuple[int, int]
) -> tuple[list[list[str]], list[tuple[int, int | None]], str]:
    """Anna's SMS answered: the parts `mailed` (place: stamp) came and the timeout mailed them to
    her; Bob texted the phone; then the part `late` (place, stamp), and the timeout again. Each
    mail's recipients, the whole texts' (id, follows), and the second mail's text."""
    ahead = [0.0]

    def clock() -> float:  # ahead of the real one by `ahead[0]` s
        return time.time() + ahead[0]

    async with gateway_and_smsc(tmp_path, clock=clock, users=(STAFF, BOB)) as (gw, operator, sink):
        conn = operator.conn
        await texted(gw, operator, STAFF, 1)
        for number, (seq, at) in enumerate(mailed.items()):
            conn.send(encode(part(2 + 2 * number, seq, at)))
        await joined(gw, ahead, len(mailed), 1)
        await sink.wait(1)
        ahead[0] += 60
        await texted(gw, operator, BOB, 2)  # Bob texts the phone since: new answers are his
        ahead[0] += 10  # ... once the phone has had it a while: none is answered within 5 s of going
        conn.send(encode(part(10, *late)))
        await joined(gw, ahead, 1, 2)
        await sink.wait(2)
        whole = "SELECT id, follows FROM mo WHERE state NOT IN ('segment', 'joined') ORDER BY id"
        rows = gw.store.db.conn.execute(whole).fetchall()
        return [m[1] for m in sink.messages], rows, body(sink, 1)[1]


async def test_a_last_part_sent_within_5_minutes_of_the_part_before_it_is_the_late_part(
    tmp_path: Path,
) -> None:
    # 320 s after part 1, 295 s after part 2.
    to, [(answer, _), (_, follows)], text = await answered(tmp_path, {1: 0, 2: 25}, (3, 320))
    assert to == [[STAFF], [STAFF]]  # before the fix: to Bob, as a new answer
    assert follows == answer and "came late" in text


@pytest.mark.parametrize(
    ("mailed", "late"),
    [({1: 0, 2: 25}, (3, 330)), ({1: 0, 3: 5}, (2, 120))],
    ids=["sent over 5 minutes after the part before it", "part 2 sent after part 3"],
)
async def test_a_part_its_sms_would_not_have_taken_while_it_waited_is_a_new_answer(
    tmp_path: Path, mailed: dict[int, int], late: tuple[int, int]
) -> None:
    # A new SMS under the reused reference whose other parts were lost (before the fix, part 2
    # stamped after part 3 went to Anna as the late part of hers).
    to, [_, (_, follows)], text = await answered(tmp_path, mailed, late)
    assert to == [[STAFF], [BOB]]
    assert follows is None and "came late" not in text
