"""A long SMS moved away from a link (`gateway.longsms`) and a stop before its parts went again: the
next start passes over that link as the stopped process did. The link it moved from was kept in
memory alone; after a kill -9 right after the move the SMS went back to the SMSC it had left (the
prefix link comes first for the number), which refused it again, and moved once more.

Real SMPP SMSCs (`tests/fakes/smsc.py`) over TCP, the daemon in-process, a real SMTP client and
SQLite file, the state the move left written to it as a crash leaves it.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from gateway.longsms import MOVED_NOTE
from tests.conftest import mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_long_sms_one_link import LONG_TEXT, NUMBER, parts_seen
from tests.test_long_sms_unanswered import config
from tests.test_policy import to


async def test_a_start_after_a_move_passes_over_the_link_it_left(tmp_path: Path) -> None:
    async with HappySMSC() as plus, HappySMSC() as orange:
        cfg = config(tmp_path, plus, orange, 10)
        async with running_gateway(cfg) as gw:
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            await gw.until(lambda: len(plus.received) == 3)
        # As `send_whole_again` leaves it: every part to go again, under a new reference, noted.
        with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
            for seq in (1, 2, 3):
                conn.execute(
                    "UPDATE parts SET state = 'deferred', next_attempt_at = 0, link = NULL, smsc_id = NULL,"
                    " submitted_at = NULL, done_at = NULL, udh = ?, error = ? WHERE seq = ?",
                    (bytes((5, 0, 3, 7, 3, seq)), MOVED_NOTE.format("plus", 121), seq),
                )
            conn.execute("UPDATE messages SET state = 'queued', concat_ref = 7")
        async with running_gateway(cfg) as gw:
            await gw.until(lambda: len(orange.received) + len(plus.received) == 6, timeout=30)
    assert len(plus.received) == 3
    assert sorted(parts_seen(orange)) == [(7, 1), (7, 2), (7, 3)]
