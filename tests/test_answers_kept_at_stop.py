"""An SMSC acceptance the store could not take before the daemon stopped is not sent again.

Defect: with the database refusing writes (a full disk, a file size limit, a lock another process
holds), the SMSC's answer waited in memory for its write; the stop cancelled that write, the part
stayed `active`, and the next start sent it again as a possible duplicate: the phone got the SMS
twice. The stop now keeps such acceptances in a side file in state_dir (`gateway.answerjournal`)
that the next start records before it requeues anything. The real daemon, a real SMPP peer, the
daemon's real SQLite file, whose write lock another connection holds from the answer to the stop.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import structlog

from gateway.answerjournal import JOURNAL_FILE
from tests.conftest import mail, make_config, running_gateway
from tests.fakes.smsc import HeldSMSC
from tests.test_faults import to


async def test_an_acceptance_unwritten_at_the_stop_is_recorded_by_the_next_start_not_sent_again(
    tmp_path: Path,
) -> None:
    async with HeldSMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        db = cfg.gateway.state_dir / "smsgw.db"
        journal = cfg.gateway.state_dir / JOURNAL_FILE
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                gw.store.db.background_patience = 0.3
                assert (await gw.send(mail(to("601123456"), "Taken once"))).error is None
                await smsc.wait_for(1)
                other = sqlite3.connect(db, isolation_level=None)
                other.execute("BEGIN IMMEDIATE")  # every write of the daemon refused from here on
                smsc.answer(1)
                await gw.until(lambda: any(e["event"] == "mt.record_retry" for e in logs))
            # Stopped while the lock is still held: the acceptance never reached the database.
            other.execute("ROLLBACK")
            other.close()
        with closing(sqlite3.connect(db)) as look:
            assert look.execute("SELECT state FROM parts").fetchall() == [("active",)]
        kept = [json.loads(line) for line in journal.read_text().splitlines()]
        assert [(k["part"], k["outcome"], k["smsc_id"] is not None) for k in kept] == [(1, "accepted", True)]
        assert [e["parts"] for e in logs if e["event"] == "dispatcher.answers_kept"] == [[1]]

        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                # The first part, had it been requeued, was due at once: it would be the second SMS.
                assert (await gw.send(mail(to("601123457"), "The next one"))).error is None
                received = await smsc.wait_for(2)
                smsc.answer(1)
                part = "SELECT state, smsc_id FROM parts WHERE id = 1"
                await gw.until(lambda: gw.store.db.conn.execute(part).fetchone()[0] == "submitted")
                assert gw.store.db.conn.execute(part).fetchone()[1] == kept[0]["smsc_id"]
        assert [sms.destination for sms in received[:2]] == ["+48601123456", "+48601123457"]
        assert not journal.exists()
        assert [e["parts"] for e in logs if e["event"] == "queue.answers_recorded"] == [[1]]
        assert not [e for e in logs if e["event"] in ("queue.recovered", "mt.possible_duplicate")]
