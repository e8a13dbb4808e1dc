"""What an SMSC sends wrong while its link stays up is shown by `smsgw status` and /metrics.

A CIMD2 SMSC sent answers to nothing, NACKs and MOs the link acknowledged and dropped as unreadable;
the link counted each, and status said "active, reconnects 0" (exit 0) with nothing in /metrics:
the only trace was throttled log lines. Real peers: the daemon with its CIMD2 link to a scripted SMSC
over TCP, `smsgw status` as a process on the same files, /metrics over HTTP.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from gateway.config import parse_config
from gateway.housekeeping import read_status
from smsc.cimd2.packet import Op, Packet
from tests.conftest import config_text, free_port, running_gateway, smtp_sink
from tests.fakes.cimd2 import ScriptedSmsc
from tests.test_process import smsgw
from tests.test_web_browser import WEB


async def test_protocol_faults_of_a_link_that_stays_up_are_shown(tmp_path: Path) -> None:
    sink_port = free_port()
    async with ScriptedSmsc() as peer, smtp_sink(sink_port):
        text = config_text(tmp_path, smsc_port=peer.port, relay_port=sink_port, extra=WEB)
        text = text.replace('type = "smpp"', 'type = "cimd2"')
        path = tmp_path / "config.toml"
        path.write_text(text)
        path.chmod(0o640)
        cfg = parse_config(text, source=str(path), base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            conn = await peer.accept()
            await conn.login()
            for n in range(5):
                conn.send(Packet(Op.NACK, 2 * n))  # NACKs to nothing of ours
            conn.send(Packet(Op.SUBMIT_RESP, 201))  # an answer to no request

            def link() -> dict[str, Any]:
                return (read_status(cfg.state_dir) or {}).get("links", {}).get("main", {})

            def faults() -> dict[str, int]:
                return link().get("faults") or {}

            # The answers to nothing are read as they come, even those that come with the login's
            # answer, before the session is marked active: the status file may say both only later.
            await gw.until(
                lambda: (
                    faults().get("nacks") == 5
                    and "unexpected" in faults()
                    and link().get("state") == "active"
                ),
                timeout=15,
            )
            status = await asyncio.to_thread(smsgw, path, "status")
            assert "link main: active" in status.stdout, status.stdout
            assert "protocol faults " in status.stdout and "nacks 5" in status.stdout, status.stdout
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
                metrics = (await c.get("/metrics")).text
            assert 'smsgw_link_protocol_faults_total{kind="nacks",link="main"} 5.0' in metrics, metrics[
                -3000:
            ]
