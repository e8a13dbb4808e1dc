"""Two runs of one month at once: `smsgw billing run` by hand while another (by hand, or the daemon's
scheduled run) is still writing the month's files. Each file was atomic, but the second run wrote
the month from another snapshot, and whichever finished first removed the `_incomplete` mark while
the other was still writing: `billing list` said the month was whole. Now the month's directory is
held by one run at a time (an exclusive flock on the directory), and another run is refused, saying
so, having written nothing.

The first run is held at a known point by tests/faults/fsynchold.c (the fsync of beta's file waits,
after acme's file is written); every run is a real process on a real SQLite file.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from structlog.testing import capture_logs

from tests.billing_world import at, cli, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_billing_month_atomic import MONTH, TRAFFIC, month_listing, start_held_run


def finish(proc: subprocess.Popen[str], trigger: Path) -> tuple[str, str]:
    trigger.unlink(missing_ok=True)
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_second_billing_run_of_a_month_being_written_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    config, cfg = prepare(tmp_path, free_port(), last_billed="2026-01", traffic=TRAFFIC)
    directory = cfg.billing_dir / MONTH
    proc, trigger = start_held_run(tmp_path, config)
    try:
        before = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
        second = cli(config, "billing", "run", "--month", MONTH)
        assert second.returncode == 1, (second.stdout, second.stderr)
        assert second.stderr == (
            f"smsgw: another run is writing the billing files of {MONTH} (the daemon's scheduled run, or"
            " another `smsgw billing run`): run again once it has ended\n"
        )
        # It wrote no file, and the month still says it is being written.
        assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == before
        assert "_incomplete" in before and not (directory / "_summary.txt").exists()
        assert month_listing(config).startswith(f"{MONTH}: INCOMPLETE")
        # One account's file alone is refused too: it would be of another snapshot than the summary.
        one = cli(config, "billing", "run", "--month", MONTH, "--account", "gamma")
        assert one.returncode == 1 and "another run is writing" in one.stderr, one.stderr
    finally:
        _out, err = finish(proc, trigger)
    assert proc.returncode == 0, err
    assert month_listing(config) == f"{MONTH}: 3 account file(s) + summary"
    # The month is free again once the first run has ended.
    again = cli(config, "billing", "run", "--month", MONTH)
    assert again.returncode == 0, again.stderr


async def test_the_daemons_scheduled_run_leaves_a_month_another_run_is_writing_for_its_next_run(
    tmp_path: Path,
) -> None:
    relay = free_port()
    config, cfg = prepare(tmp_path, relay, last_billed="2026-01", traffic=TRAFFIC)
    proc, trigger = await asyncio.to_thread(start_held_run, tmp_path, config)
    try:
        # The daemon starts (March by its clock) and its start-up run finds February being written.
        with capture_logs() as logs:
            async with smtp_sink(relay), running_gateway(cfg, clock=lambda: at(2026, 3, 2, 9)) as gw:
                await gw.until(lambda: any(e["event"].startswith("billing.") for e in logs))
                billed = last_billed(gw.store)
        events = [e for e in logs if e["event"].startswith("billing.")]
        assert [(e["event"], e["log_level"], e.get("month")) for e in events] == [
            ("billing.run_under_way", "warning", MONTH)
        ]
        assert billed == "2026-01"  # not billed: the next run (hourly, or the next start) bills it
    finally:
        _out, err = await asyncio.to_thread(finish, proc, trigger)
    assert proc.returncode == 0, err
    # Once the hand run has ended, the daemon's next run bills the month (and mails it).
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: at(2026, 3, 2, 10)) as gw:
        await gw.until(lambda: last_billed(gw.store) == MONTH)
        await sink.wait(4)  # three accounts' files and the summary
