"""Premium answers pinned to a link whose `type` changed under its name while no block kept its old
bind: they leave by the new protocol's bind, maybe another operator's SMSC whose short code is not
theirs, and neither the start nor `check-config` said so (they named the reports and long SMS only).
The daemon with its built-in simulator (SMPP and CIMD2 over TCP), a real SQLite file, real SMTP."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.cli.main import main
from gateway.config import parse_config
from tests.conftest import running_gateway, smtp_sink
from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import reply_to, smtp


async def test_answers_pinned_to_a_switched_link_no_block_keeps_the_bind_of_are_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with premium(tmp_path) as w:
        vote = await w.vote("KP123 vote A")
        assert (await smtp(w.gw.port, *reply_to(vote, "Dziekujemy"))).error is None
        await w.gw.until(lambda: w.gw.states() == ["delivered"])
        text = w.config.read_text()
    # As when the daemon stopped before the SMSC took the answer: queued, pinned to the vote's link.
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
        assert conn.execute("SELECT via FROM parts").fetchall() == [("main",)]
        conn.execute("UPDATE messages SET state = 'queued'")
        conn.execute("UPDATE parts SET state = 'queued', link = NULL, smsc_id = NULL, submitted_at = NULL")
    (smpp_port,) = re.findall(r"smpp_port = (\d+)", text)
    (cimd2_port,) = re.findall(r"cimd2_port = (\d+)", text)
    (relay,) = re.findall(r'relay = "127\.0\.0\.1:(\d+)"', text)
    switched = text.replace('name = "main"\ntype = "smpp"', 'name = "main"\ntype = "cimd2"', 1)
    switched = switched.replace(f"port = {smpp_port}\n", f"port = {cimd2_port}\n", 1)
    assert switched.count('type = "cimd2"') == 1 and switched != text
    w.config.write_text(switched)
    capsys.readouterr()
    assert main(["-c", str(w.config), "check-config"]) == 0
    (warned,) = [line for line in capsys.readouterr().err.splitlines() if "was SMPP and is CIMD2" in line]
    assert "no block has its SMPP bind" in warned, warned
    said = (
        "1 premium answer pinned to it that may still leave, and those still to come to the votes its"
        " SMPP bind brought, leave by its CIMD2 bind from the premium number"
    )
    assert said in warned, warned
    cfg = parse_config(switched, source="test", base_dir=tmp_path)
    with capture_logs() as logs:
        async with smtp_sink(int(relay)), running_gateway(cfg) as gw:  # type: ignore[arg-type]
            core = gw.daemon.simulator.core
            await gw.until(lambda: any(r["protocol"] == "cimd2" for r in core.records))
    (changed,) = [e for e in logs if e["event"] == "config.link_protocol_changed"]
    assert changed["pinned_answers"] == 1 and said in changed["note"], changed
