"""A link's window stays full: the dispatcher claims parts ahead of the window, so a place freed by an
SMSC answer is given the next part at once, with no claim (no database write) in between. Real
daemon, real SMTP client, a fake SMSC over TCP that answers submits only when the test says so.

The database is locked by another connection (as a backup tool or `sqlite3` in a shell would) while
answers are released: no write can commit then, so every submit that still goes out was claimed
before the lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.config import parse_config
from tests.conftest import DOMAIN, Running, config_text, mail, running_gateway
from tests.fakes.smsc import HeldSMSC

WINDOW, PARTS = 4, 16


def gateway_config(tmp_path: Path, port: int) -> str:
    text = config_text(tmp_path, smsc_port=port)
    assert "window = 10" in text
    return text.replace("window = 10", f"window = {WINDOW}")


def count(gw: Running, where: str) -> int:
    return int(gw.store.db.conn.execute(f"SELECT COUNT(*) FROM parts WHERE {where}").fetchone()[0])


async def queue_parts(gw: Running) -> None:
    rcpts = [f"6011{i:05d}@{DOMAIN}" for i in range(PARTS)]
    res = await gw.send(mail(rcpts, "Fire drill at noon, meet in the car park"), rcpts)
    assert res.error is None and not res.refused


async def test_every_freed_window_place_is_refilled_without_a_database_write(tmp_path: Path) -> None:
    async with HeldSMSC() as smsc:
        async with running_gateway(parse_config(gateway_config(tmp_path, smsc.port), source="test")) as gw:
            await queue_parts(gw)
            await smsc.wait_for(WINDOW)
            # At least a window's worth is claimed ahead of the full window.
            await gw.until(lambda: count(gw, "state = 'active'") >= 2 * WINDOW)
            other = sqlite3.connect(gw.store.path, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # from here on, no write of the daemon commits
                for k in range(1, WINDOW + 1):
                    smsc.answer(1)
                    await smsc.wait_for(WINDOW + k)
                    assert len(smsc.held) == WINDOW  # the freed place was refilled: the window is full
                other.execute("ROLLBACK")
            finally:
                other.close()
            while len(smsc.received) < PARTS:
                smsc.answer(len(smsc.held))
                await smsc.wait_until(lambda: bool(smsc.held) or len(smsc.received) == PARTS)
            smsc.answer(len(smsc.held))
            await gw.until(lambda: count(gw, "state = 'submitted'") == PARTS)
            assert len({s.destination for s in smsc.received}) == PARTS  # each part went once


async def test_parts_claimed_ahead_go_back_to_the_queue_untouched_on_stop(tmp_path: Path) -> None:
    async with HeldSMSC() as smsc:
        async with running_gateway(parse_config(gateway_config(tmp_path, smsc.port), source="test")) as gw:
            await queue_parts(gw)
            await smsc.wait_for(WINDOW)
            await gw.until(lambda: count(gw, "state = 'active'") >= 2 * WINDOW)
            path = gw.store.path
            gw.stop.set()
            await gw.until(lambda: gw.daemon.dispatcher._stopping)
            smsc.answer(len(smsc.held))  # the window's submits are answered during the stop
            await gw.task
        assert len(smsc.received) == WINDOW  # nothing more went out once the stop began
        conn = sqlite3.connect(path)
        try:
            rows = conn.execute("SELECT state, attempts, error FROM parts").fetchall()
        finally:
            conn.close()
        waiting = [(attempts, error) for state, attempts, error in rows if state in ("queued", "deferred")]
        assert len(waiting) == PARTS - WINDOW
        assert sum(state == "submitted" for state, _a, _e in rows) == WINDOW
        # Not sent, so not an attempt and no "possible duplicate" note for the next start.
        assert set(waiting) == {(0, None)}
