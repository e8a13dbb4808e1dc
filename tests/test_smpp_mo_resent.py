"""An SMSC's re-send of an MO on the connection that brought it: the same deliver_sm again with its
sequence number (SMPP allows no two outstanding requests of one number), or a copy with a new number
read while our answer to the first was still unwritten (an SMSC whose timeout ran out first).

Both were taken for a second SMS the phone sent (an identical MO within ACK_LATE_SECONDS on the same
connection counted as new, the sequence number and our answer never looked at): mailed twice, a
premium vote charged twice. They are the same SMS now: acknowledged, recorded `duplicate`, not mailed.
Two votes read together (an SMSC flushing what the phone sent while the link was down), or one after
our answer to the other went in time, stay two SMS (`tests.test_mo_redelivery`).

The number says "the same request" only while the first may still be outstanding for the SMSC: once
it has read our answer (it answered the enquire_link written after it), an SMSC may number its next
deliver_sm the same. The phone's same vote under the reused number was recorded `duplicate`: paid by
the phone, billed to nobody, never mailed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from smsc.base import ACK_LATE_SECONDS, InboundSms, MoAcks
from smsc.mocopies import RESEND_MIN_SECONDS
from smsc.smpp.codec import DELIVER_SM, encode_sm
from tests.fakes.smsc import HappySMSC
from tests.test_mo_crash import mo_states
from tests.test_mo_redelivery import CLIENT, acks_recorded, charges, first_lines, premium_gateway

PHONE = "+48601123456"


def vote(seq: int) -> bytes:
    return encode_sm(DELIVER_SM, seq, source_addr_ton=1, source_addr=PHONE[1:], destination_addr="7355",
                     short_message=b"KP123 A")  # fmt: skip


async def test_the_same_deliver_sm_twice_with_one_sequence_number_is_mailed_and_charged_once(
    tmp_path: Path,
) -> None:
    async with HappySMSC() as smsc, premium_gateway(tmp_path, smsc, [0.0]) as (gw, cfg, sink):
        await smsc.wait_until(lambda: bool(smsc.sessions), timeout=20)
        smsc.send_raw(vote(4242) + vote(4242))  # back to back, as the SMSC re-sent it
        await gw.until(lambda: len(mo_states(cfg.db_path)) == 2)
        db = gw.store.db.conn
        unsent = "SELECT COUNT(*) FROM outbox WHERE state != 'sent'"
        await gw.until(lambda: db.execute(unsent).fetchone()[0] == 0 and first_lines(sink, CLIENT) != [])
        await asyncio.sleep(0.3)  # a second mail would have gone with the first
        assert mo_states(cfg.db_path) == ["premium", "duplicate"]
        assert charges(cfg.db_path) == [("A", 300)]
        assert first_lines(sink, CLIENT) == ["A"]


async def test_the_same_vote_under_a_number_reused_after_our_answer_was_read_is_a_new_sms(
    tmp_path: Path,
) -> None:
    async with HappySMSC() as smsc, premium_gateway(tmp_path, smsc, [0.0]) as (gw, cfg, sink):
        await smsc.wait_until(lambda: bool(smsc.sessions), timeout=20)
        db = gw.store.db.conn
        smsc.send_raw(vote(1))
        # Our answer went in time and the SMSC answered the enquire_link written after it: number 1
        # is free, and its next deliver_sm (the phone's same vote again) carries it.
        await gw.until(lambda: acks_recorded(db, 1))
        smsc.send_raw(vote(1))
        await gw.until(lambda: len(mo_states(cfg.db_path)) == 2 and "new" not in mo_states(cfg.db_path))
        assert mo_states(cfg.db_path) == ["premium", "premium"]
        assert charges(cfg.db_path) == [("A", 300), ("A", 300)]
        await gw.until(lambda: first_lines(sink, CLIENT) == ["A", "A"])


async def test_a_copy_with_a_new_number_read_while_the_first_waits_for_our_answer_is_the_smscs() -> None:
    acks = MoAcks(lambda _sms, _ok: None, lambda: True)
    sms = InboundSms(source=PHONE, destination="7355", text="KP123 A")
    first = acks.arrived(sms, 100.0, seq=7)
    assert not first.repeated and not first.resent
    # 3 s on, our answer to the first not written (it waits behind a flood): the SMSC's re-send.
    assert acks.arrived(sms, 103.0, seq=9).resent
    # Read together with the first: two SMS flushed at once, however unanswered the first.
    assert acks.arrived(sms, 200.0, seq=11).repeated is False
    second = acks.arrived(sms, 200.0 + RESEND_MIN_SECONDS / 2, seq=12)
    assert second.repeated and not second.resent
    # The same number again while our answer to it waits, is unconfirmed or went late: the same request.
    assert acks.arrived(sms, 200.0 + ACK_LATE_SECONDS / 2, seq=12).resent
