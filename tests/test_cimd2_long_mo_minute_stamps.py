"""A long vote under the minute stamp of one whose acknowledgements the SMSC read, on its next connection.

An SMSC stamping its MOs to the minute (`yymmddhhmm00`) gives the phone's next SMS in that minute the
stamp of the one before; a phone that sends every long SMS under one reference repeats the reference
too. Two parts of a premium vote, both 70s confirmed (the alive after them answered); the SMSC closes
the connection and logs in again, and 20 s on the phone's next vote comes with the same 060, phone,
reference and texts. Each part was taken for its joined copy delivered again, however long after the
acknowledgement the SMSC had read (`gateway.store.segments`): recorded as duplicates, the second vote
neither mailed nor charged. An SMSC delivers again only what it did not see acknowledged: with those
70s unread it is still the first vote's copy, mailed and charged once. The daemon over CIMD2 to a
scripted SMSC, real SQLite."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from smsc.cimd2.packet import Op, encode
from tests.fakes.cimd2 import ScriptedSmsc
from tests.test_cimd2_long_mo_stamps import FIRST, SECOND, part
from tests.test_cimd2_mo_repeat import Acks, premium_cimd2, settled
from tests.test_mo_redelivery import CLIENT, charges, first_lines

MINUTE = "261203120000"
VOTE = encode(part(2, 1, FIRST, MINUTE)) + encode(part(4, 2, SECOND, MINUTE))
WAITING = "SELECT COUNT(*) FROM mo WHERE state = 'segment'"
PARTS_ACKED = "SELECT COUNT(*) FROM mo WHERE concat_seq IS NOT NULL AND acked_at IS NOT NULL"


@pytest.mark.parametrize("read", [True, False], ids=["its_70s_read", "its_70s_unread"])
async def test_the_same_long_vote_under_the_minute_stamp_on_the_next_connection_once_its_acks_were_read(
    tmp_path: Path, read: bool
) -> None:
    ahead = [0.0]
    async with ScriptedSmsc() as smsc, premium_cimd2(tmp_path, ahead, smsc) as (gw, conn, acks, sink):
        db = gw.store.db.conn
        if not read:  # nothing answers the alive after our 70s: the SMSC is not known to have read them
            acks.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acks.task
        conn.send(VOTE)
        if read:
            await gw.until(lambda: db.execute(PARTS_ACKED).fetchone()[0] == 2)
            acks.task.cancel()
        else:
            answered = 0
            while answered < 2:
                answered += (await conn.next()).op == Op.DELIVER_RESP
        conn.close()  # the SMSC restarts, or the line flaps: it logs in again
        again = await smsc.accept(within=30)
        await again.login()
        acks = Acks(again)
        try:
            ahead[0] += 20
            again.send(VOTE)
            await gw.until(lambda: acks.numbers == [2, 4])
            await gw.until(lambda: db.execute(WAITING).fetchone()[0] == 0)  # joined, or dropped
            await settled(gw, db.execute("SELECT COUNT(*) FROM mo").fetchone()[0])
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
