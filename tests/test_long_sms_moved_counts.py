"""`/metrics` through a long SMS sent again whole because its link was down for LONG_SMS_WAIT_SECONDS
(`gateway.linkchoice`, `gateway.longsms`): its first part, delivered over that link, left the
`delivered` state when the parts were reset to go again, and the link's counter fell from 1 to 0,
which Prometheus reads as a counter reset. The daemon against two built-in simulators over TCP (the
first one stopped: its link down), a real SQLite file, /metrics scraped over HTTP, the injected clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import pytest

from gateway.config import Config, parse_config
from gateway.configlinks import SimulatorSection
from gateway.longsms import LONG_SMS_WAIT_SECONDS
from gateway.web import counts
from smsc.simulator import Simulator
from tests.conftest import config_text, mail, running_gateway
from tests.test_link_switch_counts import WEB, never_fell, parts_total, report
from tests.test_long_sms_one_link import LONG_TEXT, NUMBER
from tests.test_long_sms_tied_wait import Clock
from tests.test_policy import to


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each scrape counts anew: a scrape within 5 s of the last one shares its counts."""
    monkeypatch.setattr(counts, "FRESH_SECONDS", 0.0)


@asynccontextmanager
async def simulator(tmp_path: Path, name: str) -> AsyncIterator[Simulator]:
    # Reports only when the test injects them.
    cfg = SimulatorSection(smpp_port=0, cimd2_port=0, control_port=0, dlr_delay_seconds=3600)
    sim = Simulator(cfg, tmp_path / "var" / f"{name}.jsonl")
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def two_links(tmp_path: Path, plus_port: int, orange_port: int) -> Config:
    """plus for +48601 (the long SMS's parts go there), orange the default link."""
    orange = f'\n[[smsc]]\nname = "orange"\ntype = "smpp"\nport = {orange_port}\n'
    orange = 'prefixes = ["+48601"]\n' + orange + 'system_id = "smsgw"\npassword = "secret"\n'
    text = config_text(tmp_path, smsc_port=plus_port, smsc_extra=orange, extra=WEB)
    return parse_config(text.replace('name = "main"', 'name = "plus"', 1), base_dir=tmp_path)


async def test_a_long_sms_moved_off_a_link_down_keeps_its_delivered_part_counted(tmp_path: Path) -> None:
    clock = Clock()
    async with simulator(tmp_path, "orange") as orange:
        async with simulator(tmp_path, "plus") as plus:
            cfg = two_links(tmp_path, plus.smpp_port, orange.smpp_port)
            async with running_gateway(cfg, clock=clock) as gw:
                assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
                await gw.until(lambda: gw.states() == ["submitted"])
                await report(gw, plus, "seq = 1")
                before = await parts_total(gw)
        # plus is gone (its SMSC stopped), as when the daemon stopped right after it took part 1.
        with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
            conn.execute(
                "UPDATE parts SET state = 'queued', link = NULL, smsc_id = NULL, submitted_at = NULL"
                " WHERE seq > 1"
            )
        async with running_gateway(cfg, clock=clock) as gw:
            choice = gw.daemon.dispatcher.choice
            await gw.until(lambda: choice.waiting() == 1)  # the rest waits for plus
            at_start = await parts_total(gw)
            clock.offset += LONG_SMS_WAIT_SECONDS + 1
            sql = "SELECT COUNT(*) FROM parts WHERE state = 'submitted' AND link = 'orange'"
            await gw.until(lambda: gw.store.db.conn.execute(sql).fetchone()[0] == 3, timeout=30)
            moved = await parts_total(gw)
            await report(gw, orange, "true")
            delivered = await parts_total(gw)
        async with running_gateway(cfg, clock=clock) as gw:
            again = await parts_total(gw)
    assert before[("plus", "delivered")] == 1, before
    never_fell(before, at_start)
    never_fell(at_start, moved)  # plus's `delivered` fell from 1 to 0 here
    never_fell(moved, delivered)
    # Part 1 under plus, which finished it first; the whole SMS again under orange.
    assert (delivered[("plus", "delivered")], delivered[("orange", "delivered")]) == (1, 3), delivered
    assert again == delivered
