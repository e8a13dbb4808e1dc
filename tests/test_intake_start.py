"""An intake worker runs the daemon's own code, and one that cannot stops the start at once.

`python -m gateway.intake_child` put the working directory first on the worker's path: a daemon
started by its `smsgw` script from a directory holding another checkout (or a `gateway/` someone
planted there) ran its relay port on that code. And a worker that found other code on disk at its
first start returned to a hook set only after the start, so it was restarted again and again
while the start waited 30 s for it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway import intake_workers
from gateway.codestamp import CodeChanged
from gateway.config import parse_config
from gateway.daemon import Daemon
from tests.conftest import DOMAIN, free_port, mail, send_blocking
from tests.fakes.smsc import HappySMSC
from tests.test_intake_workers import log_events, until, worker_config, worker_config_text
from tests.test_process import ROOT


async def test_the_worker_imports_the_daemons_code_not_the_working_directorys(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "gateway").mkdir(parents=True)
    (elsewhere / "gateway" / "__init__.py").write_text("raise SystemExit('the wrong gateway package')\n")
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        config = worker_config(tmp_path, smsc.port, smtp_port, 1)
        with (tmp_path / "daemon.log").open("ab") as out:
            # As the installed script runs it: the daemon's path does not start with the directory.
            proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "gateway.cli", "--config", str(config), "run", "--json-logs"],
                cwd=elsewhere, stdout=out, stderr=out, env={**os.environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
        try:
            await until(lambda: log_events(tmp_path, "daemon.ready"), "the start banner")
            assert log_events(tmp_path, "intake.worker_serving")
            res = await asyncio.to_thread(
                send_blocking,
                smtp_port,
                mail(f"601123456@{DOMAIN}", "Via the right code"),
                [f"601123456@{DOMAIN}"],
            )
            assert res.error is None
            await smsc.wait_for(1, timeout=20)
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 30)
    assert b"the wrong gateway package" not in (tmp_path / "daemon.log").read_bytes()
    assert not log_events(tmp_path, "worker.crashed")


async def test_a_worker_on_other_code_at_its_first_start_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stamp the daemon hands its worker is not the code's: the real worker process finds the
    # code on disk changed at once and exits as it would after an upgrade.
    monkeypatch.setattr(intake_workers, "code_stamp", lambda: "0" * 16)
    async with HappySMSC() as smsc:
        text = worker_config_text(tmp_path, smsc.port, free_port(), 1)
        daemon = Daemon(parse_config(text, source="test", base_dir=tmp_path))
        started = time.monotonic()
        with pytest.raises(CodeChanged):
            await asyncio.wait_for(daemon.run(asyncio.Event()), intake_workers.READY_SECONDS)
        took = time.monotonic() - started
    assert daemon.code_changed
    assert took < intake_workers.READY_SECONDS / 2, took  # not after the start's wait for the worker
