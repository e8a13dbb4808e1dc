"""`[simulator] control_port = 0`: the OS picks the port, and send-mo / send-report still find it.

The key took 0 (the bench and two simulators on one machine use it), but `smsgw simulator send-mo`
then connected to port 0 and could never reach the simulator. `smsgw simulator run` now writes the
port it got beside its log, the commands read it there, and it is gone again at the stop; without
it, the commands say why instead of "cannot reach the simulator on port 0".

Every command is the CLI as a process, on one config.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "gateway.cli.main"]


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        '[gateway]\ndomains = ["sms.example.com"]\nstate_dir = "var"\n'
        '[simulator]\nsmpp_port = 0\ncimd2_port = 0\ncontrol_port = 0\nlog = "var/simulator.jsonl"\n'
    )
    return config


def env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "SMSGW_CONFIG"}, "PYTHONPATH": str(ROOT)}


async def smsgw(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    def run() -> subprocess.CompletedProcess[str]:
        command = [*CLI, "-c", str(config), "simulator", *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env(), timeout=60)

    return await asyncio.to_thread(run)


async def test_send_mo_and_send_report_reach_a_simulator_on_a_port_the_os_picked(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    written = tmp_path / "var" / "simulator.control-port"
    proc = await asyncio.create_subprocess_exec(
        *CLI, "-c", str(config), "simulator", "run",
        env=env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(30):
            while not written.exists():
                assert proc.returncode is None, (await proc.communicate())[1].decode()
                await asyncio.sleep(0.05)
        said = json.loads(written.read_text())
        assert said["pid"] == proc.pid and 0 < said["control_port"] < 65536, said

        mo = await smsgw(config, "send-mo", "--to", "7355", "KP123 vote A")
        assert mo.returncode == 0, mo.stderr
        assert "held: no gateway is logged in" in mo.stdout, mo.stdout
        # The simulator answered (no SMS taken yet), not "cannot reach the simulator on port 0".
        report = await smsgw(config, "send-report", "--last")
        assert report.returncode != 0 and "Traceback" not in report.stderr, report.stderr
        assert "simulator:" in report.stderr and "cannot reach" not in report.stderr, report.stderr

        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, (out + err).decode()
    assert not written.exists()  # stopped: no port left for the next command to try

    gone = await smsgw(config, "send-mo", "--to", "7355", "hello")
    assert gone.returncode != 0 and "Traceback" not in gone.stderr, gone.stderr
    assert "control_port = 0" in gone.stderr and str(written) in gone.stderr, gone.stderr


async def test_a_port_file_left_by_a_killed_simulator_is_named_when_nothing_answers(tmp_path: Path) -> None:
    """kill -9 leaves the file: the command says where it read the port, and whose it was."""
    config = write_config(tmp_path)
    written = tmp_path / "var" / "simulator.control-port"
    written.parent.mkdir()
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    written.write_text(json.dumps({"control_port": port, "pid": 999999}))
    res = await smsgw(config, "send-mo", "--to", "7355", "hello")
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    assert f"cannot reach the simulator on port {port} (read from {written}" in res.stderr, res.stderr
    assert "pid 999999" in res.stderr, res.stderr


async def test_send_mo_reaches_the_simulator_smsgw_run_started_on_a_port_it_got(tmp_path: Path) -> None:
    # The daemon's own simulator wrote no port file: send-mo said so and could not reach it.
    from gateway.config import load_config
    from tests.conftest import config_text, free_port, running_gateway

    smpp = free_port()
    simulator = (
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = 0\ncontrol_port = 0\n"
        'log = "var/simulator.jsonl"\n'
    )
    config = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=smpp)
    config.write_text(text.replace("[simulator]\nenabled = false\n", simulator))
    written = tmp_path / "var" / "simulator.control-port"
    async with running_gateway(load_config(config)) as gw:
        assert json.loads(written.read_text())["pid"] == os.getpid()
        await gw.until(lambda: gw.daemon.links["main"].state.name == "ACTIVE")
        mo = await smsgw(config, "send-mo", "--to", "+48100200300", "an answer")
        assert mo.returncode == 0, mo.stderr
        assert "handed to the gateway" in mo.stdout, mo.stdout
    assert not written.exists()
