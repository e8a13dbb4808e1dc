"""The daemon stopping while clients and links are busy (RELIABILITY.md F10: SIGTERM during traffic).

A connected SMTP client hears 421 before the close; a submit on the wire is settled by its answer,
so the next start does not send it again; parts still waiting for a slow link's pacing go back to
the queue at once instead of holding the stop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from gateway.smtp import replies
from tests.conftest import mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC, HeldSMSC
from tests.test_faults import to


async def test_a_stopping_daemon_tells_connected_clients_421(tmp_path: Path) -> None:
    # RFC 5321 3.8: a session still open when the daemon stops hears 421 before the close, not a
    # bare TCP close (a mail server then retries at once instead of reporting a broken connection).
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        assert (await reader.readline()).startswith(b"220")
        writer.write(b"EHLO client.example\r\n")
        while not (line := await reader.readline()).startswith(b"250 "):
            assert line.startswith(b"250-")
        gw.stop.set()
        await asyncio.wait_for(gw.task, 30)
        assert (await asyncio.wait_for(reader.read(), 5)).startswith(replies.SHUTTING_DOWN.encode())
        writer.close()


async def test_a_submit_answered_while_the_daemon_stops_is_not_sent_again(tmp_path: Path) -> None:
    # SIGTERM with a submit on the wire: its answer, coming within the link's response timeout (here
    # 11 s, past the dispatcher's former 10 s), settles the part; given up, the part would stay
    # `active` and the next start would send it a second time.
    async with HeldSMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        cfg = cfg.model_copy(
            update={"smsc": [cfg.smsc[0].model_copy(update={"response_timeout_seconds": 15})]}
        )
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(to("601123456"), "On the wire at stop"))).error is None
            await smsc.wait_for(1)
            gw.stop.set()
            await asyncio.sleep(11)
            smsc.answer(1)
            await asyncio.wait_for(gw.task, 30)
        with closing(sqlite3.connect(cfg.gateway.state_dir / "smsgw.db")) as db:
            assert db.execute("SELECT state FROM parts").fetchall() == [("submitted",)]


async def test_submits_waiting_for_a_slow_links_pacing_go_back_to_the_queue_at_stop(tmp_path: Path) -> None:
    # A link allowed one SMS per 5 s: three of four parts wait for their token. At SIGTERM they have
    # not reached the SMSC, so they go back to the queue at once; waiting for their tokens held the
    # stop for 15 s and sent them while stopping.
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        cfg = cfg.model_copy(update={"smsc": [cfg.smsc[0].model_copy(update={"max_per_second": 0.2})]})
        async with running_gateway(cfg) as gw:
            numbers = ["601123456", "601123457", "601123458", "601123459"]
            assert (await gw.send(mail([to(n) for n in numbers], "Paced"))).error is None
            await smsc.wait_for(1)
            await asyncio.sleep(0.3)
            started = time.monotonic()
            gw.stop.set()
            await asyncio.wait_for(gw.task, 30)
            took = time.monotonic() - started
        assert len(smsc.received) == 1
        assert took < 4, took
        with closing(sqlite3.connect(cfg.gateway.state_dir / "smsgw.db")) as db:
            states = sorted(state for (state,) in db.execute("SELECT state FROM parts"))
            attempts = sorted(n for (n,) in db.execute("SELECT attempts FROM parts"))
        assert states == ["deferred", "deferred", "deferred", "delivered"]
        assert attempts == [0, 0, 0, 1]
