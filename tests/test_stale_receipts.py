"""A receipt that arrived unmatched is never applied to a later message that reuses its SMSC id
(issue 9, item 4): SMSC ids repeat when counters reset or wrap, and an old UNDELIV applied to a
new message fails it and sends a false bounce.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.smtp.accept import accept
from gateway.store.db import Store
from smsc.base import ReportStatus
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_store import Clock, acceptance

MINUTE = 60.0


async def test_early_receipt_within_the_window_is_applied_newest_first(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    await accept(store, acceptance(["+48601123456"]))
    (part,) = store.queue.claim_due(10)
    clock.t += MINUTE
    store.queue.record_report("main", "42", "failed", "UNDELIV", "")  # an earlier use of id 42
    clock.t += MINUTE
    store.queue.record_report("main", "42", "delivered", None, "")  # this part's, overtaking its answer
    finished = store.queue.mark_submitted(part.id, "main", "42")
    assert [f.state for f in finished] == ["delivered"]


async def test_receipt_older_than_the_window_stays_unmatched(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    store.queue.early_dlr_max_age = 10 * MINUTE
    await accept(store, acceptance(["+48601123456"]))
    (part,) = store.queue.claim_due(10)
    store.queue.record_report("main", "42", "failed", "UNDELIV", "")
    clock.t += 11 * MINUTE  # e.g. the part waited for a link
    assert store.queue.mark_submitted(part.id, "main", "42") == []
    assert store.db.conn.execute("SELECT state FROM parts").fetchone()[0] == "submitted"
    unmatched = store.db.conn.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone()[0]
    assert unmatched == 1


async def test_receipt_from_before_the_message_was_accepted_is_not_its_receipt(tmp_path: Path) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    store.queue.record_report("main", "42", "failed", "UNDELIV", "")
    clock.t += 1
    await accept(store, acceptance(["+48601123456"]))
    (part,) = store.queue.claim_due(10)
    assert store.queue.mark_submitted(part.id, "main", "42") == []


class WallClock:
    """The gateway's clock, moved forward by the test (the SMSC keeps real time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return datetime.now(UTC).timestamp() + self.offset


async def test_stale_undeliv_with_a_reused_id_does_not_fail_a_new_message(tmp_path: Path) -> None:
    # The SMSC hands out ids from 1 again (restarted); a receipt for an earlier "1" arrived unmatched
    # 11 minutes ago. The new message gets id 1 and is delivered: no failure, no bounce.
    clock = WallClock()
    sink_port = free_port()
    async with HappySMSC(first_id=0) as smsc, smtp_sink(sink_port):
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg, clock) as gw:
            await smsc.wait_until(lambda: bool(smsc.sessions))
            await smsc.sessions[0].send_report(
                "1", "+48100200300", "+48601123456", ReportStatus.FAILED, datetime.now(UTC)
            )
            await smsc.wait_until(lambda: bool(smsc.stats.deliver_responses))
            clock.offset += 11 * MINUTE
            res = await gw.send(mail(f"601123456@{DOMAIN}", "Fresh message"))
            assert res.error is None
            await gw.until(lambda: gw.states() != ["queued"] and gw.states() != ["submitted"])
            assert gw.states() == ["delivered"]
            dsn = gw.store.db.conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'dsn'").fetchone()[0]
            assert dsn == 0
