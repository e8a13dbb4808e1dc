"""MO acknowledgements around a CIMD2 link's logout, against a scripted SMSC over real TCP.

As on SMPP at its unbind: a delivery being committed when the stop begins is answered (70) before the
logout, whose answer then confirms it; a delivery read once the logout is on its way is refused with a
temporary error, since its 70 would come after the logout and could never be confirmed.
"""

from __future__ import annotations

import asyncio

from smsc.base import LinkState
from smsc.cimd2.link import Cimd2Link
from smsc.cimd2.packet import Op, P, Packet
from tests.fakes.cimd2 import PeerConnection, ScriptedSmsc
from tests.test_cimd2_link import mo, section
from tests.test_smpp_unbind_acks import Committing


async def until_op(conn: PeerConnection, op: int) -> list[Packet]:
    """The client's packets up to the first with `op`; alives on the way are answered."""
    got = [await conn.next()]
    while got[-1].op != op:
        if got[-1].op == Op.ALIVE:
            conn.send(Packet(Op.ALIVE_RESP, got[-1].number))
        got.append(await conn.next())
    return got


async def test_a_delivery_being_committed_is_answered_before_the_logout_which_confirms_it() -> None:
    events = Committing(held={"held": asyncio.Event()})
    async with ScriptedSmsc() as peer:
        link = Cimd2Link(section(peer.port, enquire_link_seconds=300), password="pw")
        await link.start(events)
        try:
            conn = await peer.accept()
            await conn.login()
            await events.wait_for(lambda: link.state is LinkState.ACTIVE)
            conn.send(mo(0, text="held"))
            await events.wait_for(lambda: events.entered == ["held"])
            stopping = asyncio.create_task(link.stop())
            await asyncio.sleep(0.1)  # the stop is under way, the MO still being committed
            events.held["held"].set()
            got = await until_op(conn, Op.LOGOUT)
            assert [p.op for p in got if p.op != Op.ALIVE] == [Op.DELIVER_RESP, Op.LOGOUT]
            assert got[0].params == []  # a plain 70: taken
            logout = got[-1]
            # A delivery read once the logout is on its way is refused, not handed up.
            conn.send(mo(2, text="after the logout"))
            refused = await conn.next()
            assert (refused.op, refused.number) == (Op.DELIVER_RESP, 2)
            assert refused.get_int(P.ERROR_CODE) == 10
            conn.send(Packet(Op.LOGOUT_RESP, logout.number))
            await asyncio.wait_for(stopping, 10)
        finally:
            await link.stop(drain=False)
    assert [m.text for m in events.delivered] == ["held"]
    assert events.acked == [("held", True)]
