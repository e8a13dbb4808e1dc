"""An `[[smsc]]` block switched from SMPP to CIMD2 with nothing out on its old bind: check-config warned in
some 900 characters of SMS awaiting reports, long SMS sent again whole and premium answers, every count
0. It says now, in a line, that the old bind had nothing out. The daemon against the built-in simulator
over TCP, a real SQLite file, check-config as a process."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gateway.config import parse_config
from tests.conftest import config_text, running_gateway
from tests.test_link_protocol_changed import simulator
from tests.test_process import CLI, ROOT


async def test_a_switch_with_nothing_out_is_said_in_a_line(tmp_path: Path) -> None:
    async with simulator(tmp_path) as sim:
        assert sim.cimd2_port is not None
        text = config_text(tmp_path, smsc_port=sim.smpp_port)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            await gw.until(lambda: gw.daemon.dispatcher is not None)
        config = tmp_path / "config.toml"
        config.write_text(
            text.replace('type = "smpp"', 'type = "cimd2"', 1).replace(
                f"port = {sim.smpp_port}", f"port = {sim.cimd2_port}", 1
            )
        )
        config.chmod(0o600)
        res = subprocess.run(
            [*CLI, "--config", str(config), "check-config"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
    assert res.returncode == 0, res.stderr
    (line,) = [x for x in res.stderr.splitlines() if "was SMPP and is CIMD2 now" in x]
    assert line.endswith(
        "its SMPP bind had nothing out (no SMS awaiting reports, no long SMS half sent, no premium answers"
        " pinned to it): nothing is lost"
    ), line
    assert "0 SMS" not in line and len(line) < 300, line
