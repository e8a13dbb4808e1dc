"""A month whose scheduled billing run failed and which `smsgw billing run --month` then writes whole
is no longer said to fail; a directory standing where an account's file goes is named in the fix (R-5).

With a directory in place of rival's file of 2026-02, the scheduled run failed with "Is a directory"
and a fix of null. Once it was moved aside, `billing run --month 2026-02` wrote every file and the
summary, yet `smsgw status` still exited 1 naming the failure, and the panel and /healthz said it,
until the next hourly run (only the scheduler cleared it). A real daemon on a real SQLite file whose
scheduled run fails on a real billing directory, a real relay sink, `smsgw` as its own process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from billing_reports import failures
from tests.billing_world import at, cli
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_web_billing_failure_own import MONTH, config


async def test_a_hand_run_that_writes_the_month_clears_its_failure(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = config(tmp_path, relay)
    in_the_way = cfg.billing_dir / MONTH / "rival.txt"
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: at(2026, 4, 9, 9)) as gw:
        await gw.until(lambda: "billing" in failures.failures(gw.store.db.conn))
        kept = failures.failures(gw.store.db.conn)["billing"]
        assert "Is a directory" in kept["error"], kept
        assert (
            kept["fix"] == f"{in_the_way} is a directory: move it aside (mv {in_the_way} {in_the_way}.aside)"
        )

        before = await asyncio.to_thread(cli, path, "status")
        assert f"billing run of {MONTH} has failed" in before.stdout, before.stdout
        in_the_way.rename(in_the_way.with_name("rival.txt.aside"))
        run = await asyncio.to_thread(cli, path, "billing", "run", "--month", MONTH)
        assert run.returncode == 0, run.stderr
        assert f"the failure of the billing run of {MONTH}" in run.stdout and "is over" in run.stdout, (
            run.stdout
        )
        assert "billing" not in failures.failures(gw.store.db.conn)
        # (It exits 1 here all the same: the daemon's link has no SMSC to bind to in this test.)
        status = await asyncio.to_thread(cli, path, "status")
        assert f"billing run of {MONTH} has failed" not in status.stdout, status.stdout
