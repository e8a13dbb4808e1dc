"""A HUP storm while an intake worker restarts does not end the new worker.

The worker ignored SIGHUP only once its imports were done: a HUP to the daemon's process group in
that moment (a storm, `systemctl kill -s HUP`, which signals the whole cgroup) ended it with status
-1, and its restarts backed off by growing pauses. It is now spawned with SIGHUP ignored, which exec
keeps. The real daemon as a process, its worker killed, HUPs sent to the group while it comes back.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from tests.conftest import DOMAIN, free_port, mail, send_blocking
from tests.fakes.smsc import HappySMSC
from tests.test_intake_workers import log_events, stop, until, worker_config, worker_pids
from tests.test_process import start_daemon


async def test_a_worker_restarted_under_a_hup_storm_comes_up_at_once(tmp_path: Path) -> None:
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        proc = await start_daemon(
            worker_config(tmp_path, smsc.port, smtp_port, 1), smtp_port, new_session=True
        )
        try:
            await until(lambda: worker_pids(tmp_path), "the worker's pid")
            os.kill(worker_pids(tmp_path)[0], signal.SIGKILL)
            for _ in range(150):  # 3 s of HUPs to the whole group, over the new worker's start
                os.killpg(proc.pid, signal.SIGHUP)
                await asyncio.sleep(0.02)
            await until(lambda: len(worker_pids(tmp_path)) >= 2, "the restarted worker")
            crashes = [str(r.get("error", "")) for r in log_events(tmp_path, "worker.crashed")]
            assert len(worker_pids(tmp_path)) == 2 and len(crashes) == 1, crashes  # the kill, nothing more
            assert proc.poll() is None
            res = await asyncio.to_thread(
                send_blocking,
                smtp_port,
                mail(f"601999999@{DOMAIN}", "After the storm"),
                [f"601999999@{DOMAIN}"],
            )
            assert res.error is None
            await smsc.wait_for(1, timeout=20)
        finally:
            await stop(proc)
