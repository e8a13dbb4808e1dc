"""/healthz says the database is locked while another process holds its write lock, without waiting
for its heartbeat write to give up.

Defect: /healthz awaited its heartbeat write first, and that write waited out the store's whole
patience for the lock (5 s) before the answer went: a monitor with a shorter timeout saw the node
down with no word. Real HTTP against the real daemon, whose real SQLite file another connection
holds with BEGIN IMMEDIATE (as an sqlite3 shell or a backup does). The store's patience is raised
here far past the client's timeout, so that an answer that waits for it cannot come at all.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from gateway.cli.status import STORE_LOCKED
from smsc.base import LinkState
from tests.conftest import make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_web_browser import WEB, _get


async def test_healthz_answers_database_locked_while_another_process_holds_it(tmp_path: Path) -> None:
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        health = f"http://127.0.0.1:{gw.daemon.web.port}/healthz"
        await gw.until(lambda: gw.daemon.links["main"].state is LinkState.ACTIVE)
        assert await asyncio.to_thread(_get, health) == (200, "ok\n")
        gw.store.db.interactive_patience = 120.0  # the write would wait 12 times the client's timeout
        with closing(sqlite3.connect(gw.config.db_path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            await asyncio.sleep(1.1)  # past the shared heartbeat's second: this look writes afresh
            for _ in range(2):  # the second look shares the write still waiting, not a new one
                status, text = await asyncio.to_thread(_get, health)  # urllib gives up after 10 s
                assert status == 503, text
                assert text.startswith(f"store not writable: {STORE_LOCKED}"), text
                await asyncio.sleep(1.1)
            other.execute("ROLLBACK")
        # The lock gone, the write under way commits, and a later look says so.
        for _ in range(50):
            if (said := await asyncio.to_thread(_get, health)) == (200, "ok\n"):
                break
            assert said[0] == 503 and STORE_LOCKED in said[1], said
            await asyncio.sleep(0.2)
        assert said == (200, "ok\n")
