"""A long vote under the minute stamp of one whose acknowledgements the SMSC read, on its next connection.

An SMSC stamping its MOs to the minute (`yymmddhhmm00`) gives the phone's next SMS in that minute the
stamp of the one before; a phone that sends every long SMS under one reference repeats the reference
too. Two parts of a premium vote, both 70s confirmed (the alive after them answered); the SMSC closes
the connection and logs in again, and 20 s on the phone's next vote comes with the same 060, phone,
reference and texts. Each part was taken for its joined copy delivered again, however long after the
acknowledgement the SMSC had read (`gateway.store.segments`): recorded as duplicates, the second vote
neither mailed nor charged. An SMSC delivers again only what it did not see acknowledged: with those
70s unread it is still the first vote's copy, mailed and charged once. So for a vote whose part 2 was
lost and whose part 1 still waits: the next vote's part 1 went with it (`gateway.store.segmentsets`),
two votes charged as one. The SMSC sending the same requests again on the connection (`resent`) after
reading our 70s still sends the same vote. Nor was the vote the SMSC delivered again (its 70s lost with
the first connection) known to be read once the SMSC read its copies' 70s: the phone's next vote went
as its retry. The daemon over CIMD2 to a scripted SMSC, real SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import housekeeping
from gateway.reassembly import TIMEOUT_SECONDS
from smsc.cimd2.packet import encode
from tests.conftest import Running
from tests.fakes.cimd2 import ScriptedSmsc
from tests.test_cimd2_long_mo_stamps import FIRST, SECOND, part
from tests.test_cimd2_mo_repeat import OTHER, answered, deliver, logged_in_again, premium_cimd2, settled
from tests.test_mo_redelivery import CLIENT, PHONE, acks_recorded, charges, first_lines

MINUTE = "261203120000"
VOTE = encode(part(2, 1, FIRST, MINUTE)) + encode(part(4, 2, SECOND, MINUTE))
WAITING = "SELECT COUNT(*) FROM mo WHERE state = 'segment'"
PHONES_WHOLE = "SELECT state FROM mo WHERE source = ? AND concat_seq IS NULL ORDER BY id"
PARTS_ACKED = "SELECT COUNT(*) FROM mo WHERE concat_seq IS NOT NULL AND acked_at IS NOT NULL"


async def all_joined(gw: Running) -> None:
    """No part waits (each joined, or dropped), and every MO stored has made its mail."""
    db = gw.store.db.conn
    await gw.until(lambda: db.execute(WAITING).fetchone()[0] == 0)
    await settled(gw, db.execute("SELECT COUNT(*) FROM mo").fetchone()[0])


@pytest.mark.parametrize("read", [True, False], ids=["its_70s_read", "its_70s_unread"])
async def test_the_same_long_vote_under_the_minute_stamp_on_the_next_connection_once_its_acks_were_read(
    tmp_path: Path, read: bool
) -> None:
    ahead = [0.0]
    async with ScriptedSmsc() as smsc, premium_cimd2(tmp_path, ahead, smsc) as (gw, conn, acks, sink):
        db = gw.store.db.conn
        if not read:  # nothing answers the alive after our 70s: the SMSC is not known to have read them
            await acks.stop()
        conn.send(VOTE)
        if read:
            await gw.until(lambda: db.execute(PARTS_ACKED).fetchone()[0] == 2)
            acks.task.cancel()
        else:
            await answered(conn, 2)
        again, acks = await logged_in_again(smsc, conn)
        try:
            ahead[0] += 20
            again.send(VOTE)
            await gw.until(lambda: acks.numbers == [2, 4])
            await all_joined(gw)  # joined, or dropped
        finally:
            acks.task.cancel()
        whole = "SELECT state FROM mo WHERE concat_seq IS NULL ORDER BY id"
        states = [s for (s,) in db.execute(whole)]
        parts = [s for (s,) in db.execute("SELECT state FROM mo WHERE concat_seq IS NOT NULL ORDER BY id")]
        body = FIRST[6:] + SECOND
        if read:  # the phone's second vote, paid for
            assert states == ["premium", "premium"]
            assert parts == ["joined"] * 4
            assert charges(gw.config.db_path) == [(body, 600), (body, 600)]
            assert first_lines(sink, CLIENT) == [body, body]
        else:  # the SMSC's copy of the vote whose acknowledgements it may have missed
            assert states == ["premium"]
            assert parts == ["joined", "joined", "duplicate", "duplicate"]
            assert charges(gw.config.db_path) == [(body, 600)]
            assert first_lines(sink, CLIENT) == [body]


@pytest.mark.parametrize("read", [True, False], ids=["its_70_read", "its_70_unread"])
async def test_the_next_long_vote_under_the_minute_stamp_of_one_whose_first_part_still_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read: bool
) -> None:
    # The first vote's part 2 never came; its part 1 waits. On the SMSC's next connection, 20 s on,
    # the phone's next vote under the same minute stamp and reference: its part 1 was taken for the
    # waiting one delivered again (`gateway.store.segmentsets`), the two votes one, the first's part
    # neither mailed nor charged. With that 70 unread, it is the SMSC's copy, and the vote is one.
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 0.05)
    ahead = [0.0]
    async with ScriptedSmsc() as smsc, premium_cimd2(tmp_path, ahead, smsc) as (gw, conn, acks, sink):
        db = gw.store.db.conn
        if not read:
            await acks.stop()
        conn.send(encode(part(2, 1, FIRST, MINUTE)))
        if read:
            await gw.until(lambda: db.execute(PARTS_ACKED).fetchone()[0] == 1)
            acks.task.cancel()
        else:
            await answered(conn, 1)
        again, acks = await logged_in_again(smsc, conn)
        try:
            ahead[0] += 20
            again.send(VOTE)
            await gw.until(lambda: acks.numbers == [2, 4])
            ahead[0] += TIMEOUT_SECONDS + 1  # whatever still waits is joined, with its gap
            await all_joined(gw)
        finally:
            acks.task.cancel()
        body = FIRST[6:] + SECOND
        if read:  # the second vote whole, the first with its gap: each part paid for
            assert sorted(charges(gw.config.db_path)) == [
                (FIRST[6:] + " [part 2 of 2 missing]", 300),
                (body, 600),
            ]
            assert len(first_lines(sink, CLIENT)) == 2
        else:
            assert charges(gw.config.db_path) == [(body, 600)]
            assert first_lines(sink, CLIENT) == [body]


@pytest.mark.parametrize("sent", ["whole", "part 1 of 2"])
async def test_a_long_vote_the_smsc_sends_again_under_its_numbers_after_reading_the_70s_is_one_vote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent: str
) -> None:
    # The same packets again on the same connection 3 s after their 70s were read (the SMSC's counter
    # far from coming round): the SMSC sending those requests again (`resent`), not the phone. A lone
    # part has another phone's vote after it: the delivery just before is a retransmission, which the
    # link answers without handing it up (`smsc.cimd2.inbound`).
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 0.05)
    ahead = [0.0]
    lone = encode(part(2, 1, FIRST, MINUTE))
    first, again = (
        (VOTE, VOTE) if sent == "whole" else (lone + encode(deliver(4, OTHER, "KP123 B", MINUTE)), lone)
    )
    async with premium_cimd2(tmp_path, ahead) as (gw, conn, acks, sink):
        db = gw.store.db.conn
        conn.send(first)
        await gw.until(lambda: acks_recorded(db, 3 if sent == "whole" else 2))
        ahead[0] += 3
        conn.send(again)
        await gw.until(lambda: acks.numbers.count(2) == 2 and len(acks.numbers) == 4 - (sent != "whole"))
        ahead[0] += TIMEOUT_SECONDS + 1
        await all_joined(gw)
        if sent == "whole":
            assert charges(gw.config.db_path) == [(FIRST[6:] + SECOND, 600)]
            assert len(first_lines(sink, CLIENT)) == 1
        else:
            assert sorted(charges(gw.config.db_path)) == [
                ("B", 300),
                (FIRST[6:] + " [part 2 of 2 missing]", 300),
            ]
            assert len(first_lines(sink, CLIENT)) == 2
        # One whole text of the phone: the SMSC's copies make no second one, not even one dropped later.
        assert [s for (s,) in db.execute(PHONES_WHOLE, (PHONE,))] == ["premium"]


@pytest.mark.parametrize("where", ["same connection", "connection after"])
async def test_the_next_long_vote_after_the_smsc_read_the_70s_of_the_vote_it_sent_again_is_a_second_charge(
    tmp_path: Path, where: str
) -> None:
    # The first vote's 70s were lost with its connection; on the next one the SMSC delivers the vote
    # again and reads those 70s. 20 s on the phone's next vote comes under the same minute stamp and
    # reference: on that connection under new numbers (`smsc.cimd2.mostamps` hands its parts up
    # without the stamp), or on the one after it, stamped. Judged by the first vote's unread
    # acknowledgements alone, its parts were taken for the SMSC's retry after the bind, or its whole
    # text was: the vote neither mailed nor charged.
    ahead = [0.0]
    async with ScriptedSmsc() as smsc, premium_cimd2(tmp_path, ahead, smsc) as (gw, conn, acks, sink):
        db = gw.store.db.conn
        await acks.stop()
        conn.send(VOTE)
        await answered(conn, 2)
        again, acks = await logged_in_again(smsc, conn)
        try:
            ahead[0] += 5
            again.send(VOTE)  # the vote whose 70s the SMSC missed
            await gw.until(lambda: db.execute(PARTS_ACKED).fetchone()[0] == 2)  # this time it read them
            ahead[0] += 20
            if where == "same connection":
                again.send(encode(part(6, 1, FIRST, MINUTE)) + encode(part(8, 2, SECOND, MINUTE)))
                await gw.until(lambda: acks.numbers == [2, 4, 6, 8])
            else:
                acks.task.cancel()
                last, acks = await logged_in_again(smsc, again)
                last.send(VOTE)
                await gw.until(lambda: acks.numbers == [2, 4])
            await all_joined(gw)
        finally:
            acks.task.cancel()
        parts = [s for (s,) in db.execute("SELECT state FROM mo WHERE concat_seq IS NOT NULL ORDER BY id")]
        assert parts == ["joined", "joined", "duplicate", "duplicate", "joined", "joined"]
        body = FIRST[6:] + SECOND
        assert [s for (s,) in db.execute(PHONES_WHOLE, (PHONE,))] == ["premium", "premium"]
        assert charges(gw.config.db_path) == [(body, 600), (body, 600)]
        assert first_lines(sink, CLIENT) == [body, body]


async def test_the_next_long_vote_after_the_smsc_read_the_70_of_its_copy_of_a_waiting_part_is_a_second_charge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first vote's part 2 never came and its part 1's 70 was lost with the connection; on the next
    # one the SMSC delivers that part again and reads its 70. 20 s on the phone's next vote comes
    # under the same minute stamp and reference, its part 1 handed up without the stamp: taken for
    # another copy of the waiting part (`segmentrepeats._its_copy`), the first vote's set was dropped at
    # its timeout, its part neither mailed nor charged.
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 0.05)
    ahead = [0.0]
    async with ScriptedSmsc() as smsc, premium_cimd2(tmp_path, ahead, smsc) as (gw, conn, acks, sink):
        db = gw.store.db.conn
        await acks.stop()
        conn.send(encode(part(2, 1, FIRST, MINUTE)))
        await answered(conn, 1)
        again, acks = await logged_in_again(smsc, conn)
        try:
            ahead[0] += 5
            again.send(encode(part(2, 1, FIRST, MINUTE)))  # the part whose 70 the SMSC missed
            await gw.until(lambda: db.execute(PARTS_ACKED).fetchone()[0] == 1)  # this time it read it
            ahead[0] += 20
            again.send(encode(part(6, 1, FIRST, MINUTE)) + encode(part(8, 2, SECOND, MINUTE)))
            await gw.until(lambda: acks.numbers == [2, 6, 8])
            ahead[0] += TIMEOUT_SECONDS + 1  # whatever still waits is joined, with its gap
            await all_joined(gw)
        finally:
            acks.task.cancel()
        assert sorted(charges(gw.config.db_path)) == [
            (FIRST[6:] + " [part 2 of 2 missing]", 300),
            (FIRST[6:] + SECOND, 600),
        ]
        assert len(first_lines(sink, CLIENT)) == 2
