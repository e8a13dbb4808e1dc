"""The simulator's control port drops a client's session on demand ({"op": "drop"}): an outage on the
wire while the simulator goes on, where a test had to stop the simulator (losing what it held) or
reach into its servers. The daemon against the built-in simulator over TCP, and the control port's
JSON lines over TCP as `smsgw simulator` sends them."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from gateway.config import parse_config
from gateway.configlinks import SimulatorSection
from smsc.simulator import Simulator
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, config_text, mail, running_gateway


async def test_a_dropped_session_binds_again_and_a_report_injected_meanwhile_comes(tmp_path: Path) -> None:
    # Reports by hand (an hour late otherwise).
    cfg = SimulatorSection(smpp_port=0, cimd2_port=0, control_port=0, dlr_delay_seconds=3600)
    sim = Simulator(cfg, tmp_path / "var" / "simulator.jsonl")
    await sim.start()
    try:
        text = config_text(tmp_path, smsc_port=sim.smpp_port)
        with capture_logs() as logs:
            async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
                await gw.until(lambda: len(sim.core.logged_in("smpp", "smsgw")) == 1)
                (first,) = sim.core.logged_in(None, None)

                async def drop(**which: str) -> dict[str, object]:
                    return await send_command("127.0.0.1", sim.control_port, {"op": "drop", **which})

                assert await drop(system_id="someone else") == {"ok": True, "dropped": 0}
                assert await drop(protocol="cimd2") == {"ok": True, "dropped": 0}
                assert sim.core.logged_in(None, None) == [first]
                assert (await drop(protocol="fax"))["ok"] is False
                # A misspelt key chose nothing, and every session was dropped.
                refused = await drop(sytem_id="someone else")
                assert refused["ok"] is False and "sytem_id" in str(refused["error"]), refused
                assert sim.core.logged_in(None, None) == [first]
                assert await drop(system_id="smsgw") == {"ok": True, "dropped": 1}
                await gw.until(lambda: sim.core.logged_in(None, None) not in ([], [first]))
                assert (await gw.send(mail(f"601123456@{DOMAIN}", "Before the outage"))).error is None
                await gw.until(lambda: gw.states() == ["submitted"])
                assert await drop() == {"ok": True, "dropped": 1}
                # Bound again or not yet: a report with no session to take it is held until one binds.
                report = {"op": "report", "last": True, "status": "delivered"}
                assert (await send_command("127.0.0.1", sim.control_port, report))["ok"] is True
                await gw.until(lambda: gw.states() == ["delivered"])
        downs = [e for e in logs if e["event"] == "link.state" and e["state"] != "active"]
        assert len(downs) >= 2, downs  # the link saw both drops
    finally:
        await sim.stop()
