"""A vote the SMSC delivers again versus the same vote sent again by the phone, told apart over CIMD2 by
the SMSC's own time stamp (060), with the daemon running against the simulator's CIMD2 server over TCP.

The SMSC stamps an SMS when it takes it from the phone and delivers it again with that stamp; the same
text sent again by the phone gets a new one. Where the acknowledgement of the first copy was lost with
its connection, only the stamp tells a paid vote from a redelivery. The simulator here is the built-in
one (`Cimd2Server`, `SimulatorCore`) with one test knob: a session that stops hearing the client from a
given acknowledgement on, as a connection that dies right after (or right before) our 70 reaches the
SMSC. Its clock and the daemon's are moved ahead together, not slept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import SimulatorSection, parse_config
from gateway.store.db import Store
from smsc.cimd2.packet import Op, Packet
from smsc.simulator.cimd2_server import Cimd2Server, Cimd2Session
from smsc.simulator.cimd2_texts import mo_params
from smsc.simulator.core import SimulatorCore
from tests.conftest import Running, Sink, config_text, free_port, running_gateway, smtp_sink
from tests.test_mo_redelivery import (
    CLIENT,
    PHONE,
    PREMIUM,
    acks_recorded,
    charges,
    confirmed_kp123,
    first_lines,
)

LONG = "KP123 " + "long vote " * 20  # two parts


class DeafeningSession(Cimd2Session):
    """A session that, once its server's `hear` count of 70s is used up, hears nothing more from the
    client (`hear = 0`: not even the next 70). What it did not hear it records in `unheard`; an MO
    whose 70 it did not hear goes back to the core at the drop, 060 kept, as from a real SMSC."""

    server: DeafeningServer
    deaf = False

    def dispatch(self, packet: Packet) -> None:
        server = self.server
        if packet.op == Op.DELIVER_RESP and server.hear == 0:
            self.deaf = True
        if self.deaf:
            server.unheard.append(packet.op)
            server.changed()
            return
        super().dispatch(packet)
        if packet.op == Op.DELIVER_RESP and server.hear is not None:
            server.hear -= 1
            self.deaf = server.hear == 0


class DeafeningServer(Cimd2Server):
    session_class = DeafeningSession

    def __init__(self, core: SimulatorCore, ahead: list[float]) -> None:
        # Its 060 follows the daemon's clock; no resend on the session the test drops.
        super().__init__(
            core, now=lambda: datetime.now(UTC) + timedelta(seconds=ahead[0]), resend_timeout=600
        )
        self.hear: int | None = None
        self.unheard: list[int] = []

    async def drop(self) -> None:
        """End the client's connection (what the session did not hear is held for the next login)
        and wait until the client is logged in again."""
        self.hear = None
        old = set(self.sessions)
        self.drop_sessions()
        await self.logged_in(without=old)

    async def logged_in(self, without: set[Cimd2Session] | frozenset[Cimd2Session] = frozenset()) -> None:
        """Wait until a session other than `without` is logged in (a login wakes no `wait_until`)."""
        async with asyncio.timeout(10):
            while not any(s.logged_in for s in self.sessions - without):
                await asyncio.sleep(0.02)


@asynccontextmanager
async def cimd2_premium_gateway(
    tmp_path: Path, ahead: list[float]
) -> AsyncIterator[tuple[Running, DeafeningServer, Sink]]:
    """The gateway on a CIMD2 link to the simulator, with a confirmed premium service KP123 of acme
    on 7355, both clocks `ahead[0]` seconds ahead of the real one, and the relay sink of its mail."""
    sim = SimulatorSection(system_id="smsgw", password="secret", dlr_delay_seconds=0.01)
    core = SimulatorCore(sim, tmp_path / "sim.jsonl")
    server = DeafeningServer(core, ahead)
    await server.start()
    relay = free_port()
    try:
        async with smtp_sink(relay) as sink:
            text = config_text(tmp_path, smsc_port=server.port, relay_port=relay, extra=PREMIUM)
            text = text.replace('type = "smpp"', 'type = "cimd2"')
            path = tmp_path / "config.toml"
            path.write_text(text)
            cfg = parse_config(text, source="test", base_dir=tmp_path)
            async with running_gateway(cfg, clock=lambda: time.time() + ahead[0]) as gw:
                await confirmed_kp123(gw, path)
                await server.logged_in()
                yield gw, server, sink
    finally:
        await server.stop()
        await core.close()


def whole_mos(gw: Running, columns: str = "state, acked_at") -> list[tuple[object, ...]]:
    """`columns` of each whole MO (a segment delivered again is none), in order."""
    whole = "state NOT IN ('segment', 'joined') AND concat_seq IS NULL"
    return list(gw.store.db.conn.execute(f"SELECT {columns} FROM mo WHERE {whole} ORDER BY id"))


def stamps(gw: Running) -> list[object]:
    """The 060 stored with each whole MO, in order."""
    return [stamp for (stamp,) in whole_mos(gw, "smsc_time")]


async def settled(gw: Running) -> None:
    """Every mail the MOs made has left (a second mail of a vote would go with the others)."""
    unsent = "SELECT COUNT(*) FROM outbox WHERE state != 'sent'"
    await gw.until(lambda: gw.store.db.conn.execute(unsent).fetchone()[0] == 0)
    await asyncio.sleep(0.3)


async def test_a_vote_sent_again_after_an_ack_lost_with_its_connection_is_two_mails_and_two_charges(
    tmp_path: Path,
) -> None:
    # (a) A lost ack: the SMSC took our 70 of the vote, but the connection dropped before it
    # answered the alive written after it, so the ack is not known to have reached it. A minute later
    # the phone votes the same again: a new 060, a new SMS the operator charged the phone for.
    ahead = [0.0]
    async with cimd2_premium_gateway(tmp_path, ahead) as (gw, server, sink):
        server.hear = 1  # our 70 of the vote, then nothing more
        assert await server.core.inject_mo(PHONE, "7355", "KP123 A") == 1
        await server.wait_until(lambda: Op.ALIVE in server.unheard)
        await server.drop()
        ahead[0] += 60
        assert await server.core.inject_mo(PHONE, "7355", "KP123 A") == 1
        await gw.until(lambda: len(whole_mos(gw)) == 2)
        await gw.until(lambda: acks_recorded(gw.store.db.conn, 1))  # the second vote's, on the new link
        await settled(gw)
        (first, acked1), (second, _) = whole_mos(gw)
        assert acked1 is None  # the first vote's acknowledgement is not known to have reached the SMSC
        assert (first, second) == ("premium", "premium")
        assert charges(gw.config.db_path) == [("A", 300), ("A", 300)]
        assert first_lines(sink, CLIENT) == ["A", "A"]
        stamp1, stamp2 = stamps(gw)
        assert stamp1 and stamp2 and stamp1 != stamp2


@pytest.mark.parametrize("later", [3.0, 130.0])
async def test_a_vote_delivered_again_with_its_060_after_the_drop_is_one_mail_and_one_charge(
    tmp_path: Path, later: float
) -> None:
    # (b) The connection died before the SMSC read our 70: after the reconnect it delivers the vote
    # again, `later` seconds on, with the 060 it gave it. The same SMS: mailed once, charged once.
    ahead = [0.0]
    async with cimd2_premium_gateway(tmp_path, ahead) as (gw, server, sink):
        server.hear = 0
        assert await server.core.inject_mo(PHONE, "7355", "KP123 A") == 1
        await server.wait_until(lambda: server.unheard[:2] == [Op.DELIVER_RESP, Op.ALIVE])
        ahead[0] += later
        await server.drop()
        await gw.until(lambda: len(whole_mos(gw)) == 2)  # delivered again
        assert await server.core.inject_mo(PHONE, "7355", "KP123 marker") == 1
        await gw.until(lambda: "marker" in first_lines(sink, CLIENT))
        await settled(gw)
        assert [state for state, _ in whole_mos(gw)] == ["premium", "duplicate", "premium"]
        assert charges(gw.config.db_path) == [("A", 300), ("marker", 300)]
        assert first_lines(sink, CLIENT) == ["A", "marker"]
        stamp1, stamp2, stamp3 = stamps(gw)
        assert stamp1 and stamp1 == stamp2 != stamp3  # the simulator kept the 060 of the vote


@pytest.mark.parametrize("reference", ["new", "reused"])
async def test_a_long_vote_sent_again_after_its_last_ack_was_lost_is_charged_again(
    tmp_path: Path, reference: str
) -> None:
    # A two-part vote: the SMSC took both 70s, the connection dropped before the alive after the last
    # was answered. A minute later the phone sends the same long vote, under a new reference or the
    # same one (an octet: references come round). Its parts carry new 060s: a new SMS.
    ahead = [0.0]
    async with cimd2_premium_gateway(tmp_path, ahead) as (gw, server, sink):
        server.hear = 2
        assert await server.core.inject_mo(PHONE, "7355", LONG) == 1
        await server.wait_until(lambda: Op.ALIVE in server.unheard)
        await server.drop()
        ahead[0] += 60
        if reference == "new":
            assert await server.core.inject_mo(PHONE, "7355", LONG) == 1
        else:
            first_ref = "SELECT concat_ref FROM mo WHERE concat_seq IS NOT NULL ORDER BY id LIMIT 1"
            (ref,) = gw.store.db.conn.execute(first_ref).fetchone()
            (session,) = server.sessions
            for params in mo_params(PHONE, "7355", LONG, ref, server.now()):
                await session.send_part(tuple(params))  # type: ignore[attr-defined]
        parts = "SELECT COUNT(*) FROM mo WHERE concat_seq IS NOT NULL"
        await gw.until(lambda: gw.store.db.conn.execute(parts).fetchone()[0] == 4)  # joined, or not
        await settled(gw)
        assert whole_mos(gw, "state") == [("premium",), ("premium",)]
        assert whole_mos(gw, "acked_at")[0] == (None,)
        body = LONG.removeprefix("KP123 ").strip()
        assert charges(gw.config.db_path) == [(body, 600), (body, 600)]
        assert len(first_lines(sink, CLIENT)) == 2
        stamp1, stamp2 = stamps(gw)  # the earliest 060 of each set's parts
        assert stamp1 and stamp2 and stamp1 != stamp2


async def test_a_long_vote_whose_last_part_is_delivered_again_is_one_mail_and_one_charge(
    tmp_path: Path,
) -> None:
    # The SMSC read our 70 of the first part, not that of the second: after the reconnect, 130 s on,
    # it delivers the second part again (reference and 060 kept). The set was joined: one SMS.
    ahead = [0.0]
    async with cimd2_premium_gateway(tmp_path, ahead) as (gw, server, sink):
        server.hear = 1
        assert await server.core.inject_mo(PHONE, "7355", LONG) == 1
        await server.wait_until(lambda: Op.DELIVER_RESP in server.unheard)
        await gw.until(lambda: len(whole_mos(gw)) == 1)
        ahead[0] += 130
        await server.drop()
        again = "SELECT COUNT(*) FROM mo WHERE state = 'duplicate' AND concat_seq IS NOT NULL"
        await gw.until(lambda: gw.store.db.conn.execute(again).fetchone()[0] == 1)
        await settled(gw)
        assert whole_mos(gw, "state") == [("premium",)]
        body = LONG.removeprefix("KP123 ").strip()
        assert charges(gw.config.db_path) == [(body, 600)]
        assert len(first_lines(sink, CLIENT)) == 1


async def test_a_vote_under_the_060_of_one_whose_ack_was_read_on_the_next_connection_is_a_second_charge(
    tmp_path: Path,
) -> None:
    # The first vote's acknowledgement reached the SMSC (it answered the alive after it); 3 s on, on a
    # new connection, the phone's next vote comes with the same 060 (the SMSC's clock is stuck). The
    # SMSC delivers no SMS again whose acknowledgement it read: a second SMS, paid for
    # (`gateway.store.redelivery`). Taken for the first delivered again, it went unbilled.
    ahead = [0.0]
    async with cimd2_premium_gateway(tmp_path, ahead) as (gw, server, _sink):
        frozen = server.now()
        server.now = lambda: frozen
        assert await server.core.inject_mo(PHONE, "7355", "KP123 A") == 1
        await gw.until(lambda: acks_recorded(gw.store.db.conn, 1))
        ahead[0] += 3
        await server.drop()
        assert await server.core.inject_mo(PHONE, "7355", "KP123 A") == 1
        await gw.until(lambda: len(whole_mos(gw)) == 2)
        await settled(gw)
        (first, acked1), (second, _) = whole_mos(gw)
        assert acked1 is not None
        assert (first, second) == ("premium", "premium")
        assert charges(gw.config.db_path) == [("A", 300), ("A", 300)]
        stamp1, stamp2 = stamps(gw)
        assert stamp1 and stamp1 == stamp2


def test_a_copy_delivered_again_after_a_new_sms_of_the_same_text_is_known_by_its_stamp(
    tmp_path: Path,
) -> None:
    # The SMSC delivers the first vote again (its ack lost) only after the phone's second vote came:
    # the latest copy has another stamp, the first one this stamp. Without stamps (SMPP) the latest
    # copy speaks, as before.
    now = [1_800_000_000.0]
    store = Store.open(tmp_path / "db.sqlite", clock=lambda: now[0])

    def vote(stamp: str | None) -> int:
        mo_id = store.mo.record_mo("c", PHONE, "7355", "KP123 A", 0, None, smsc_time=stamp)
        assert mo_id is not None
        now[0] += 60
        return mo_id

    first = vote("270115080000")
    second = vote("270115080100")
    assert store.mo.redelivery_of(second) is None
    assert store.mo.redelivery_of(vote("270115080000")) == first
    latest = vote(None)
    assert store.mo.redelivery_of(vote(None)) == latest
    store.close()
