"""A start that fails once its ports are bound says its error, and only it.

Past the binds a start can still fail: a link's start raising, the intake workers' readiness raising.
The stop that undid it ran without the daemon's stop marked as meant, and the panel's server task,
watched as a vital task, ending under that stop was logged as `daemon.task_lost task=web ... returned`
beside the real error. No SMSC driver nor the intake workers raise there today, so each case puts a
raise in the real method, in a real `smsgw run` process with the real panel, links and listeners.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import config_text, free_port

ROOT = Path(__file__).resolve().parents[1]
RUN = "import sys\nfrom gateway.cli.main import main\nsys.exit(main(sys.argv[1:]))"
# The link raises at once; the readiness once the real workers did serve (their wait ran for real).
RAISING = {
    "link": "import smsc.smpp.link as where\nowner, name, first = where.SmppLink, 'start', False\n",
    "intake": (
        "import gateway.intake_workers as where\n"
        "owner, name, first = where.IntakeWorkers, 'wait_ready', True\n"
    ),
}
RAISE = """
real = getattr(owner, name)
async def _raising(self, *args, **kwargs):
    if first:
        await real(self, *args, **kwargs)
    raise OSError(5, 'the start failed past the binds')
setattr(owner, name, _raising)
"""


@pytest.mark.parametrize("where", ["link", "intake"])
def test_a_start_failing_past_the_binds_says_its_error_and_no_lost_panel(tmp_path: Path, where: str) -> None:
    text = config_text(tmp_path, smsc_port=free_port()) + '\n[web]\nenabled = true\nlisten = "127.0.0.1:0"\n'
    if where == "intake":
        text = text.replace("[smtp]\n", "[smtp]\nintake_processes = 1\n", 1)
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o640)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    command = [sys.executable, "-c", RAISING[where] + RAISE + RUN, "--config", str(config), "run"]
    res = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines[-1] == "smsgw: cannot start: [Errno 5] the start failed past the binds", res.stderr
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    events = [e["event"] for e in logged]
    assert "web.started" in events  # the panel ran, and its end came with the stop
    if where == "intake":
        assert "intake.worker_started" in events
    assert "daemon.task_lost" not in events, res.stderr
    assert "daemon.task_failed_at_stop" not in events, res.stderr
    assert events[-1] == "daemon.stopped"
