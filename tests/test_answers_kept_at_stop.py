"""An SMSC acceptance the store could not take before the daemon stopped is not sent again.

Defect: with the database refusing writes (a full disk, a file size limit, a lock another process
holds), the SMSC's answer waited in memory for its write; the stop cancelled that write, the part
stayed `active`, and the next start sent it again as a possible duplicate: the phone got the SMS
twice. The stop now keeps such acceptances in a side file in state_dir (`gateway.answerjournal`)
that the next start records before it requeues anything. The real daemon, a real SMPP peer, the
daemon's real SQLite file, whose write lock another connection holds from the answer to the stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import structlog

from gateway.answerjournal import JOURNAL_FILE, Unwritten, apply
from gateway.smtp.accept import accept
from gateway.store.db import Store
from tests.conftest import mail, make_config, running_gateway
from tests.fakes.smsc import HeldSMSC
from tests.test_faults import to
from tests.test_store import acceptance


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
        assert [(k["part"], k["smsc_id"] is not None) for k in kept] == [(1, True)]
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


async def test_an_unwritable_side_file_names_the_parts_that_will_go_again(tmp_path: Path) -> None:
    # Where the side file cannot be written either (here a directory stands in its place, as any
    # refusal of the file system would), the stop says at error which SMS will reach their phones
    # twice, instead of nothing at INFO.
    store = Store.open(tmp_path / "smsgw.db")
    await accept(store, acceptance(["+48601123456"]))
    (part,) = store.queue.claim_due(10)
    (tmp_path / JOURNAL_FILE).mkdir()
    unwritten = Unwritten(store.path)
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(asyncio.CancelledError), unwritten.accepted(part, "main", "abc", None):
            raise asyncio.CancelledError  # the stop cut its write off
        await unwritten.keep()
    store.close()
    (lost,) = [e for e in logs if e["event"] == "dispatcher.answers_lost"]
    assert lost["log_level"] == "error" and lost["parts"] == [part.id], lost


async def test_the_side_file_touches_no_part_of_another_database_nor_one_settled_since(
    tmp_path: Path,
) -> None:
    # A restore put another file in the database's place, or the write committed as the stop came:
    # the entry is left alone, and the file goes all the same.
    store = Store.open(tmp_path / "smsgw.db")
    await accept(store, acceptance(["+48601123456", "+48601123457", "+48601123458"]))
    first, second, third = store.queue.claim_due(10)
    unwritten = Unwritten(store.path)
    for part in (first, second, third):
        with (
            contextlib.suppress(asyncio.CancelledError),
            unwritten.accepted(part, "main", f"id{part.id}", None),
        ):
            raise asyncio.CancelledError
    unwritten.answers[first.id] = unwritten.answers[first.id].model_copy(update={"db": "0:1"})
    await unwritten.keep()
    store.queue.mark_submitted(second.id, "main", "settled", second.message_id)
    assert apply(store, lambda _finished: None) == [third.id]
    rows = store.db.conn.execute("SELECT id, state, smsc_id FROM parts ORDER BY id").fetchall()
    assert rows == [
        (first.id, "active", None),
        (second.id, "submitted", "settled"),
        (third.id, "submitted", f"id{third.id}"),
    ]
    assert not (tmp_path / JOURNAL_FILE).exists()
    store.close()
