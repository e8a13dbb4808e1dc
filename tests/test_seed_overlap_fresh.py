"""Two `[[account]]` blocks listing one relay network, on a fresh install (no database yet): check-config
before the first start and the first start itself name the shared network, as a restart did. Both
read only the database, which the first start seeds after its warnings. The CLI as real processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

from tests.conftest import config_text, free_port
from tests.test_process import CLI, ROOT, smsgw

BETA = """
[[account]]
name = "beta"
relay_networks = ["127.0.0.0/8"]
users = ["bob@beta.example"]
"""


def _fresh(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=free_port(), extra=BETA))
    path.chmod(0o640)
    (tmp_path / "state").mkdir()
    return path


def test_check_config_before_the_first_start_names_the_shared_network(tmp_path: Path) -> None:
    config = _fresh(tmp_path)
    res = smsgw(config, "check-config")
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "state" / "smsgw.db").exists()
    warned = [line for line in res.stderr.splitlines() if "share relay network addresses" in line]
    assert len(warned) == 1 and "acme (127.0.0.0/8)" in warned[0] and "beta (127.0.0.0/8)" in warned[0], (
        res.stderr
    )


async def test_the_first_start_logs_the_shared_network(tmp_path: Path) -> None:
    config = _fresh(tmp_path)
    log = tmp_path / "daemon.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*CLI, "--config", str(config), "run", "--json-logs"],
            cwd=ROOT, stdout=out, stderr=out, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    try:
        for _ in range(600):  # a hang guard of 30 s, not a timing assertion
            if b'"daemon.ready"' in log.read_bytes() or proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
    events = []
    for line in log.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    assert any(e.get("event") == "daemon.ready" for e in events), log.read_text()[-2000:]
    shared = [e for e in events if e.get("event") == "config.relay_networks_shared"]
    assert len(shared) == 1 and "beta (127.0.0.0/8)" in shared[0]["detail"], shared
