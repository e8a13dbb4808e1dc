"""Long MOs over CIMD2 whose parts the phone sent apart (R-3.4). The SMSC stamps each part (060) with
when it took it from the phone; a phone on a poor signal may take a minute over a part. Compared
only within 30 s, the two halves of such an answer waited apart and were mailed five minutes later
as two broken mails, a premium vote's second half to the fallback address. Such a part joins once
no part of its own SMS can still come (30 s after it came, the SMSC delivering one SMS's parts a
second or two apart), not as it comes: a new SMS under the reused reference whose part 2 the SMSC
delivered before its part 1 made the waiting one whole, two votes mailed and charged as one. A new
SMS under the reused reference stays apart: the phone sends its parts in order, so its part 1
stamped after the waiting SMS's part 2 is no part of that.
The daemon runs against a scripted CIMD2 SMSC over TCP with its clock ahead of the real one; the
reuse cases run on the real store and housekeeping with an injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from email import message_from_bytes, policy
from pathlib import Path

from gateway.config import parse_config
from gateway.reassembly import TIMEOUT_SECONDS
from gateway.store.segmentsets import PARTS_APART_SECONDS
from smsc.base import Concat
from smsc.cimd2.packet import Op, P, Packet, encode
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.cimd2 import ScriptedSmsc
from tests.test_cimd2_mo_repeat import premium_cimd2, settled
from tests.test_cimd2_report_keys import Operator
from tests.test_mo_redelivery import CLIENT, PHONE, SENDER, charges, first_lines
from tests.test_segment_reuse import mails, started, waiting

APART = PARTS_APART_SECONDS + 1  # the daemon's clock moved on until no part of that SMS can come

FIRST = "KP123 Glosuje na zespol numer siedem, bo gral najlepiej ze wszystkich tego wieczoru, a " + "x" * 66
SECOND = " i dziekuje!"


def part(number: int, seq: int, text: str, stamp: str, to: str = "7355") -> Packet:
    """Part `seq` of 2 of the phone's SMS to `to` under reference 0x77, as the SMSC delivers it."""
    return Packet.make(Op.DELIVER, number, (P.DESTINATION, to), (P.ORIGINATOR, PHONE), (P.SCTS, stamp),
                       (P.UDH, f"0500037702{seq:02X}"), (P.USER_DATA, text))  # fmt: skip


async def test_a_long_vote_whose_parts_the_phone_sent_45_s_apart_is_one_vote(tmp_path: Path) -> None:
    ahead = [0.0]
    async with premium_cimd2(tmp_path, ahead) as (gw, conn, acks, sink):
        conn.send(encode(part(2, 1, FIRST, "261206120000")))
        await gw.until(lambda: acks.numbers == [2])
        ahead[0] += 45
        conn.send(encode(part(4, 2, SECOND, "261206120045")))
        await gw.until(lambda: acks.numbers == [2, 4])
        # Joined once no other part can come, not at the timeout: the clock stays well short of it.
        ahead[0] += APART
        await settled(gw, 3)
        assert charges(gw.config.db_path) == [(FIRST[6:] + SECOND, 600)]  # two parts
        assert first_lines(sink, CLIENT) == [FIRST[6:] + SECOND]
        states = [s for (s,) in gw.store.db.conn.execute("SELECT state FROM mo ORDER BY id")]
        assert states == ["joined", "joined", "premium"]


async def test_a_long_vote_sent_apart_joins_its_first_half_the_smsc_delivered_after_the_second(
    tmp_path: Path,
) -> None:
    # The SMSC held part 1 and delivered it after part 2: the stamps still say 1 was sent first.
    ahead = [0.0]
    async with premium_cimd2(tmp_path, ahead) as (gw, conn, acks, sink):
        conn.send(encode(part(2, 2, SECOND, "261206120050")))
        await gw.until(lambda: acks.numbers == [2])
        ahead[0] += 70
        conn.send(encode(part(4, 1, FIRST, "261206120000")))
        await gw.until(lambda: acks.numbers == [2, 4])
        ahead[0] += APART
        await settled(gw, 3)
        assert first_lines(sink, CLIENT) == [FIRST[6:] + SECOND]


async def test_a_long_answer_whose_parts_the_phone_sent_45_s_apart_is_one_mail(
    tmp_path: Path,
) -> None:
    ahead = [0.0]
    relay = free_port()
    async with ScriptedSmsc() as peer, smtp_sink(relay) as sink:
        text = config_text(tmp_path, smsc_port=peer.port, relay_port=relay)
        text = text.replace('type = "smpp"', 'type = "cimd2"').replace("window = 10\n", "")
        cfg = parse_config(text, source="test", base_dir=tmp_path)
        async with running_gateway(cfg, clock=lambda: time.time() + ahead[0]) as gw:
            conn = await peer.accept()
            await conn.login()
            operator = Operator(conn)
            serving = asyncio.create_task(operator.serve())
            try:
                await gw.send(mail(f"{PHONE}@{DOMAIN}", "Kiedy?", subject="Meeting"))
                await operator.until_submits(1)
                sent = "SELECT COUNT(*) FROM messages WHERE state = 'submitted'"
                await gw.until(lambda: gw.store.db.conn.execute(sent).fetchone()[0] == 1)
                conn.send(encode(part(2, 1, FIRST[6:], "261206120000", to=SENDER)))
                await gw.until(lambda: gw.store.db.conn.execute("SELECT COUNT(*) FROM mo").fetchone()[0] == 1)
                ahead[0] += 45
                conn.send(encode(part(4, 2, SECOND, "261206120045", to=SENDER)))
                await gw.until(lambda: gw.store.db.conn.execute("SELECT COUNT(*) FROM mo").fetchone()[0] >= 2)
                ahead[0] += APART
                await sink.wait(1)  # before the fix: only at the timeout, 5 minutes on, as two mails
                body = message_from_bytes(sink.messages[0][2], policy=policy.default).get_body(("plain",))
                assert body is not None
                assert body.get_content().startswith(FIRST[6:] + SECOND + "\r\n")
            finally:
                serving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await serving


async def test_a_new_sms_under_the_reused_reference_is_not_taken_for_the_lost_first_half(
    tmp_path: Path,
) -> None:
    # A's part 1 was lost; B, sent three minutes later under the same reference, lost its part 2.
    # B's part 1 fills A's free place within the 5 minutes, but was sent after A's part 2: two SMS.
    w, hk = await started(tmp_path)
    await w.mo("AAAA second half", concat=Concat(ref=7, total=2, seq=2), raw={"smsc_time": "261203100000"})
    w.now += 180
    await w.mo("BBBB first half ", concat=Concat(ref=7, total=2, seq=1), raw={"smsc_time": "261203100300"})
    assert mails(w) == []
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    assert sorted(mails(w)) == [
        "BBBB first half  [part 2 of 2 missing]",
        "[part 1 of 2 missing] AAAA second half",
    ]
    assert waiting(w) == 0


async def test_parts_sent_apart_in_order_join_at_the_timeout_when_one_is_missing(
    tmp_path: Path,
) -> None:
    # Parts 1 and 2 of 3, the phone sending part 2 a minute after part 1; part 3 never came.
    w, hk = await started(tmp_path)
    await w.mo("one ", concat=Concat(ref=9, total=3, seq=1), raw={"smsc_time": "261203100000"})
    w.now += 60
    await w.mo("two ", concat=Concat(ref=9, total=3, seq=2), raw={"smsc_time": "261203100100"})
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    assert mails(w) == ["one two  [part 3 of 3 missing]"]


async def test_a_new_sms_sent_after_the_timeout_is_its_own(tmp_path: Path) -> None:
    # B's part 2 alone, stamped ten minutes after A's part 1, in order but later than the timeout.
    w, hk = await started(tmp_path)
    await w.mo("AAAA first half ", concat=Concat(ref=7, total=2, seq=1), raw={"smsc_time": "261203100000"})
    w.now += 30
    await w.mo("BBBB second half", concat=Concat(ref=7, total=2, seq=2), raw={"smsc_time": "261203101000"})
    assert mails(w) == []
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    assert sorted(mails(w)) == [
        "AAAA first half  [part 2 of 2 missing]",
        "[part 1 of 2 missing] BBBB second half",
    ]


async def test_a_new_sms_whose_part_2_came_first_is_not_the_rest_of_the_waiting_one(tmp_path: Path) -> None:
    # A's part 2 was lost; B, sent 100 s later under the same reference, came part 2 first: B's
    # part 2 would make A whole, in order, but B's part 1 (B's stamp) came a second after it.
    w, hk = await started(tmp_path)
    await w.mo("AAAA first half ", concat=Concat(ref=7, total=2, seq=1), raw={"smsc_time": "261203100000"})
    w.now += 100
    await w.mo("BBBB second half", concat=Concat(ref=7, total=2, seq=2), raw={"smsc_time": "261203100140"})
    assert mails(w) == []  # before the fix: A's first half with B's second, one SMS
    w.now += 1
    await w.mo("BBBB first half ", concat=Concat(ref=7, total=2, seq=1), raw={"smsc_time": "261203100140"})
    w.now += APART
    await hk.expire()
    assert mails(w) == ["BBBB first half BBBB second half"]
    w.now += TIMEOUT_SECONDS
    await hk.expire()
    assert sorted(mails(w)) == ["AAAA first half  [part 2 of 2 missing]", "BBBB first half BBBB second half"]
    assert waiting(w) == 0


async def test_a_part_sent_apart_joins_its_set_once_it_waited(tmp_path: Path) -> None:
    # The phone sent part 2 45 s after part 1 and nothing else came: whole before the timeout.
    w, hk = await started(tmp_path)
    await w.mo("one ", concat=Concat(ref=9, total=2, seq=1), raw={"smsc_time": "261203100000"})
    w.now += 45
    await w.mo("two", concat=Concat(ref=9, total=2, seq=2), raw={"smsc_time": "261203100045"})
    w.now += APART
    await hk.expire()
    assert mails(w) == ["one two"]
    assert waiting(w) == 0


async def test_a_part_sent_apart_is_not_taken_at_the_timeout_by_a_set_its_own_sms_continues(
    tmp_path: Path,
) -> None:
    # 3 parts: A's 1 and 2 came, its 3 was lost; B's 3 came 100 s later, then B's 1 (B's 2 lost).
    w, hk = await started(tmp_path)
    await w.mo("A1 ", concat=Concat(ref=5, total=3, seq=1), raw={"smsc_time": "261203100000"})
    await w.mo("A2 ", concat=Concat(ref=5, total=3, seq=2), raw={"smsc_time": "261203100001"})
    w.now += 100
    await w.mo("B3", concat=Concat(ref=5, total=3, seq=3), raw={"smsc_time": "261203100140"})
    await w.mo("B1 ", concat=Concat(ref=5, total=3, seq=1), raw={"smsc_time": "261203100140"})
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    assert sorted(mails(w)) == ["A1 A2  [part 3 of 3 missing]", "B1  [part 2 of 3 missing] B3"]
    assert waiting(w) == 0
