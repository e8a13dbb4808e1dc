"""With no link up the dispatcher waits for one to come up (the link's coming up wakes it), instead of
looking again by the due time of the parts already due: that was every 10 ms, a read of the queue each
time, for as long as the links stayed down. A real daemon whose only SMPP link's binds are refused
until the simulator's server starts on its port; a real SQLite file, whose statements are counted."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from gateway.config import load_config
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway
from tests.fakes.smsc import HappySMSC

CLAIM_READ = "SELECT account_id, next_attempt_at,"  # the claim's read of the due parts (`claimreads`)


async def test_with_no_link_up_the_dispatcher_waits_for_one_instead_of_looking_every_10_ms(
    tmp_path: Path,
) -> None:
    port = free_port()  # the only link's binds are refused
    text = config_text(tmp_path, smsc_port=port)
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o640)
    async with running_gateway(load_config(path)) as gw:
        rcpts = [f"60100000{i}@{DOMAIN}" for i in range(3)]
        assert (await gw.send(mail(rcpts, "Due, and no link to take it"), rcpts)).error is None
        conn, looks = gw.store.db.conn, []
        conn.set_trace_callback(lambda sql: looks.append(sql) if "SELECT MIN(due)" in sql else None)
        await asyncio.sleep(2)
        conn.set_trace_callback(None)
        assert len(looks) <= 6, len(looks)  # one a second at most; by the parts' due time, ~100 a second
        async with HappySMSC(port=port) as main:
            await main.wait_for(3, timeout=20)
            await gw.until(lambda: gw.states() == ["delivered"] * 3)


async def test_with_a_link_up_and_nothing_due_the_dispatcher_claims_nothing_each_second(
    tmp_path: Path,
) -> None:
    # It looks at the due time of the queue instead: an idle gateway (or one whose waiting parts all wait
    # for a link that is down, `gateway.linkwaits`) wrote a claim's transaction each second.
    async with HappySMSC() as smsc:
        path = tmp_path / "config.toml"
        path.write_text(config_text(tmp_path, smsc_port=smsc.port))
        path.chmod(0o640)
        async with running_gateway(load_config(path)) as gw:
            rcpts = [f"60100000{i}@{DOMAIN}" for i in range(3)]
            assert (await gw.send(mail(rcpts, "Sent, then nothing"), rcpts)).error is None
            await gw.until(lambda: gw.states() == ["delivered"] * 3)
            conn, seen = gw.store.db.conn, []
            conn.set_trace_callback(seen.append)
            await asyncio.sleep(2.5)  # the dispatcher's looks, each second
            conn.set_trace_callback(None)
            assert [sql for sql in seen if CLAIM_READ in sql] == []
            # And what comes due is claimed all the same: made due by another process (an admin's tool).
            other = sqlite3.connect(gw.store.path)
            with other:
                other.execute("UPDATE parts SET state = 'deferred', next_attempt_at = 0 WHERE id = 1")
            other.close()
            await smsc.wait_for(4, timeout=20)
