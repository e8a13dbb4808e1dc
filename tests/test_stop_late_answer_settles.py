"""A late submit answer read while the daemon stops (RELIABILITY.md F10) settles its part.

A submit past its response timeout waits for its late answer (`gateway.late_answers`). The stop
waits for the submits still on the wire and for the links' unbind; an acceptance of the late one read
meanwhile must settle its part as any late answer does. Thrown away, the part stayed waiting, the
next start sent the SMS again, and the copy's receipt decided a part the phone already had. The
gateway in this process against the SMPP simulator over loopback TCP, a real SQLite file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from tests.conftest import mail, make_config, running_gateway
from tests.fakes.smsc import HeldSMSC
from tests.test_faults import to


def states(db_path: Path) -> list[tuple[str, str, str | None]]:
    """Each part's phone, state and SMSC id, read as another process would."""
    with closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as db:
        sql = "SELECT destination, state, smsc_id FROM parts ORDER BY id"
        return [tuple(row) for row in db.execute(sql)]


async def until(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), seconds)


async def test_a_late_acceptance_read_during_the_stop_settles_its_part(tmp_path: Path) -> None:
    async with HeldSMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        link = {"response_timeout_seconds": 1.0, "late_answer_grace_seconds": 60.0}
        cfg = cfg.model_copy(update={"smsc": [cfg.smsc[0].model_copy(update=link)]})
        db_path = cfg.gateway.state_dir / "smsgw.db"
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(to("601123456"), "Answered late, at the stop"))).error is None
            await smsc.wait_for(1)
            # Past its response timeout: released to wait for its late answer.
            await until(lambda: states(db_path)[0][1] != "active")
            assert (await gw.send(mail(to("601123457"), "On the wire at the stop"))).error is None
            await smsc.wait_for(2)
            gw.stop.set()  # the stop waits for the second submit's answer, then the unbind
            await asyncio.sleep(0.3)
            smsc.answer(2)  # the first one's acceptance, late; the second's in time
            await asyncio.wait_for(gw.task, 30)
        got = states(db_path)
    assert len(smsc.received) == 2
    assert [state for _phone, state, _id in got] == ["submitted", "submitted"], got
    assert all(smsc_id for _phone, _state, smsc_id in got), got
