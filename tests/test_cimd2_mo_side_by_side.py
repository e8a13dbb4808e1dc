"""CIMD2 deliveries handed up side by side, so that those the SMSC's window sends at once share the
store's commits, and still answered in arrival order, each only after it was committed (or refused).

Kannel's test_cimd2 sends its next MO only after our 70 to the last (stop-and-wait): it cannot show
deliveries waiting side by side, so these run against a scripted SMSC over TCP and, for the commits,
the gateway on its real SQLite store.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from gateway.config import parse_config
from smsc.base import Ack, LinkState
from smsc.cimd2.link import Cimd2Link
from smsc.cimd2.packet import Op, P, Packet, encode
from smsc.encoding import concat_udh
from tests.conftest import Running, config_text, free_port, running_gateway, smtp_sink
from tests.fakes.cimd2 import PeerConnection, ScriptedSmsc
from tests.test_cimd2_link import mo, section
from tests.test_smpp_unbind_acks import Committing

TEXTS = ["one", "two", "three", "four", "five"]


@asynccontextmanager
async def linked(events: Committing) -> AsyncIterator[tuple[Cimd2Link, PeerConnection]]:
    async with ScriptedSmsc() as peer:
        link = Cimd2Link(section(peer.port, enquire_link_seconds=300), password="pw")
        await link.start(events)
        try:
            conn = await peer.accept()
            await conn.login()
            await events.wait_for(lambda: link.state is LinkState.ACTIVE)
            yield link, conn
        finally:
            await link.stop(drain=False)


def burst(texts: list[str], first: int = 0) -> bytes:
    """The deliveries in one write, numbered as an SMSC numbers them: 000, 002, ..."""
    return b"".join(encode(mo(first + 2 * i, text=text)) for i, text in enumerate(texts))


async def reply(conn: PeerConnection, within: float = 10.0) -> Packet:
    """The client's next packet but an alive (the link's own check that the session holds, or the one
    that follows 70s), which is answered on the way."""
    while (packet := await conn.next(within=within)).op == Op.ALIVE:
        conn.send(Packet(Op.ALIVE_RESP, packet.number))
    return packet


async def silent(conn: PeerConnection) -> bool:
    """Whether the client writes nothing but alives for a moment (a guard, not a timing: a write fails it
    at once)."""
    try:
        packet = await reply(conn, within=0.3)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected {packet.describe()}")


async def test_a_burst_is_handed_up_side_by_side_and_answered_in_arrival_order() -> None:
    # Five MOs in one write: all five reach the store while the first is still being committed (one at
    # a time, each waited for the one before: 60 MO/s). The third, committed first, is not answered
    # before the first: the 70s go out in arrival order, each once its MO is committed.
    events = Committing(held={"one": asyncio.Event(), "three": asyncio.Event()})
    async with linked(events) as (_link, conn):
        conn.send(burst(TEXTS))
        await events.wait_for(lambda: events.entered == TEXTS)
        assert [m.text for m in events.delivered] == ["two", "four", "five"]
        events.held["three"].set()
        await events.wait_for(lambda: len(events.delivered) == 4)
        assert await silent(conn)  # "one" is not committed yet: nothing may be answered
        events.held["one"].set()
        got = [await reply(conn) for _ in range(5)]
        assert [(p.op, p.number, p.params) for p in got] == [
            (Op.DELIVER_RESP, n, []) for n in (0, 2, 4, 6, 8)
        ]
        with contextlib.suppress(TimeoutError):  # the alive after the 70s, whose answer confirms them
            await reply(conn, within=0.5)
        await events.wait_for(lambda: len(events.acked) == 5)
    assert events.acked == [(text, True) for text in TEXTS]
    assert [m.text for m in events.delivered] == ["two", "four", "five", "three", "one"]


@pytest.mark.parametrize("answer", [Ack.OK, Ack.RETRY])
async def test_a_retransmission_of_an_mo_being_committed_is_answered_as_it_is_and_handed_up_once(
    answer: Ack,
) -> None:
    # The SMSC repeats a delivery (the same request whole) while ours is still being committed: the copy
    # waits for its original's answer and gets the same, and is not another vote.
    param = [] if answer is Ack.OK else [(P.ERROR_CODE, "10")]
    events = Committing(held={"vote": asyncio.Event()}, ack=answer)
    async with linked(events) as (_link, conn):
        conn.send(encode(mo(0, text="vote")) + encode(mo(0, text="vote")) + encode(mo(2, text="next")))
        await events.wait_for(lambda: events.entered == ["vote", "next"])
        assert await silent(conn)
        events.held["vote"].set()
        got = [await reply(conn) for _ in range(3)]
        assert [(p.op, p.number, p.params) for p in got] == [
            (Op.DELIVER_RESP, 0, param), (Op.DELIVER_RESP, 0, param), (Op.DELIVER_RESP, 2, param),
        ]  # fmt: skip
    assert events.calls == 2


async def test_a_stop_mid_burst_answers_what_was_read_before_the_logout_and_refuses_the_rest() -> None:
    # A stop while three MOs are being committed side by side: their 70s come first, in order, then the
    # logout, whose answer confirms them; an MO read after the logout is refused (900:10) and kept by
    # the SMSC for the next session.
    events = Committing(held={"one": asyncio.Event(), "two": asyncio.Event()})
    async with linked(events) as (link, conn):
        conn.send(burst(["one", "two", "three"]))
        await events.wait_for(lambda: events.entered == ["one", "two", "three"])
        stopping = asyncio.create_task(link.stop())
        assert await silent(conn)  # the stop waits for the MOs being committed
        events.held["two"].set()
        events.held["one"].set()
        got = [await reply(conn) for _ in range(4)]
        assert [(p.op, p.number, p.params) for p in got[:3]] == [(Op.DELIVER_RESP, n, []) for n in (0, 2, 4)]
        assert got[3].op == Op.LOGOUT
        conn.send(mo(6, text="after the logout"))
        refused = await reply(conn)
        assert (refused.op, refused.number, refused.get_int(P.ERROR_CODE)) == (Op.DELIVER_RESP, 6, 10)
        conn.send(Packet(Op.LOGOUT_RESP, got[3].number))
        await asyncio.wait_for(stopping, 10)
    assert events.entered == ["one", "two", "three"]
    assert events.acked == [("one", True), ("two", True), ("three", True)]


async def test_an_mo_committed_behind_one_still_being_committed_when_the_connection_ends_is_unconfirmed() -> (
    None
):
    # Its 70 waited for the one before it and was never written: the gateway hears so, and keeps its
    # rows unmarked, so that the SMSC's next copy is known for the same SMS.
    events = Committing(held={"one": asyncio.Event()})
    async with linked(events) as (_link, conn):
        conn.send(burst(["one", "two"]))
        await events.wait_for(lambda: events.entered == ["one", "two"])
        assert await silent(conn)
        conn.close()
        await events.wait_for(lambda: events.acked == [("two", False)])
    assert [m.text for m in events.delivered] == ["two"]


# --- on the gateway's real store ------------------------------------------------------------------

FAILING = """CREATE TRIGGER test_refused BEFORE INSERT ON mo WHEN NEW.text = 'refused'
             BEGIN SELECT RAISE(ABORT, 'the store refuses this one'); END"""


@asynccontextmanager
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[Running, PeerConnection]]:
    relay = free_port()
    async with ScriptedSmsc() as peer, smtp_sink(relay):
        text = config_text(tmp_path, smsc_port=peer.port, relay_port=relay).replace(
            'type = "smpp"', 'type = "cimd2"'
        )
        async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)) as gw:
            conn = await peer.accept()
            await conn.login()
            yield gw, conn


def long_mo(number: int, seq: int, text: str) -> Packet:
    return Packet.make(Op.DELIVER, number, (P.DESTINATION, "7155"), (P.ORIGINATOR, "+48601555666"),
                       (P.SCTS, "261121045622"), (P.UDH, concat_udh(7, 2, seq).hex().upper()),
                       (P.USER_DATA, text))  # fmt: skip


async def test_a_burst_shares_one_commit_and_the_one_the_store_refuses_is_answered_in_its_turn(
    tmp_path: Path,
) -> None:
    async with gateway(tmp_path) as (gw, conn):
        db = gw.store.db.conn
        db.execute(FAILING)
        statements: list[str] = []
        db.set_trace_callback(statements.append)
        reader = sqlite3.connect(gw.config.db_path)  # what another process sees: what was committed
        try:
            part_one, part_two = "a" * 153, "b" * 40
            conn.send(
                burst(["one", "two", "refused"])
                + encode(long_mo(6, 1, part_one))
                + encode(long_mo(8, 2, part_two))
                + burst(["six"], first=10)
            )
            answers: list[tuple[int, list[tuple[int, str]]]] = []
            stored: list[int] = []
            while len(answers) < 6:
                packet = await conn.next(within=30)
                if packet.op != Op.DELIVER_RESP:
                    continue  # the alive after the 70s: left unanswered
                answers.append((packet.number, packet.params))
                stored.append(reader.execute("SELECT COUNT(*) FROM mo").fetchone()[0])
        finally:
            db.set_trace_callback(None)
            reader.close()
        refused = [(P.ERROR_CODE, "10")]
        assert answers == [(0, []), (2, []), (4, refused), (6, []), (8, []), (10, [])]
        # Each 70 only after its MO was committed: here all of them by the first, the long one joined.
        assert stored == [6] * 6  # the whole texts and the long one's two parts
        texts = [t for (t,) in db.execute("SELECT text FROM mo WHERE state != 'joined' ORDER BY id")]
        assert texts == ["one", "two", part_one + part_two, "six"]
        # One transaction took them all (one at a time, it took one each).
        assert committed_with_mo(statements) == 1


def committed_with_mo(statements: list[str]) -> int:
    """How many committed transactions wrote the mo table."""
    count, wrote = 0, False
    for sql in statements:
        head = sql.lstrip().upper()
        if head.startswith("BEGIN"):
            wrote = False
        elif head.startswith("INSERT INTO MO "):
            wrote = True
        elif head.startswith("COMMIT"):
            count += wrote
            wrote = False
    return count
