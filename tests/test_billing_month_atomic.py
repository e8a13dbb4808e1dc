"""A month's billing files are many, each written atomically; a run stopped between them (Ctrl-C in
`billing run`, the daemon killed mid-run) left some accounts' files and no summary, and `billing
list` showed "2026-02: 1 account file(s)" like any month. The month's directory now says it is
incomplete until its summary is written: `billing list` and `billing show` say so, and the next run
(by hand, or the daemon's catch-up at its next start) writes it again and clears the mark.

The stop falls at a known point: tests/faults/fsynchold.c holds the fsync of the second account's
file (`beta`) from outside the process, after the first (`acme`) is written. The CLI and the
daemon run as real processes on a real SQLite file; the restarted daemon has an injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from billing_reports.mailedrecord import LOCK, RECORD
from tests.billing_world import ROOT, at, cli, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_process import build_fsynchold, wait_for_text

MONTH = "2026-02"
TRAFFIC = {name: [at(2026, 2, 10, 12)] for name in ("acme", "beta", "gamma")}


def held_env(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    """An environment in which the fsync of beta's file waits while `trigger` exists; `marker`
    appears when it starts waiting."""
    shim = build_fsynchold(tmp_path)
    trigger, marker = tmp_path / "hold-fsync", tmp_path / "fsync-held"
    trigger.touch()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LD_PRELOAD": " ".join(filter(None, [str(shim), os.environ.get("LD_PRELOAD")])),
        "FSYNCHOLD_TRIGGER": str(trigger),
        "FSYNCHOLD_MARKER": str(marker),
        "FSYNCHOLD_NEEDLE": "# account\tbeta\n",
    }
    return env, trigger, marker


def start_held_run(tmp_path: Path, config: Path) -> tuple[subprocess.Popen[str], Path]:
    """`billing run` of MONTH stopped inside beta's file; the trigger to unlink to let it go on."""
    env, trigger, marker = held_env(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "-c", str(config), "billing", "run", "--month", MONTH],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    held = wait_for_text(marker, 30).split()
    assert "beta.txt" in held[1], held
    return proc, trigger


def month_listing(config: Path) -> str:
    listed = cli(config, "billing", "list")
    assert listed.returncode == 0, listed.stderr
    return next(line for line in listed.stdout.splitlines() if line.startswith(MONTH))


def test_ctrl_c_in_billing_run_leaves_a_month_marked_incomplete_and_the_next_run_completes_it(
    tmp_path: Path,
) -> None:
    config, cfg = prepare(tmp_path, free_port(), last_billed="2026-01", traffic=TRAFFIC)
    directory = cfg.billing_dir / MONTH
    proc, trigger = start_held_run(tmp_path, config)  # acme's file is written, beta's waits for its fsync
    try:
        proc.send_signal(signal.SIGINT)
        trigger.unlink()
        _out, err = proc.communicate(timeout=60)
    finally:
        trigger.unlink(missing_ok=True)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and f"{MONTH} is incomplete" in err and "Traceback" not in err, err
    assert (directory / "acme.txt").exists() and not (directory / "_summary.txt").exists()

    listed = month_listing(config)
    assert listed.startswith(f"{MONTH}: INCOMPLETE, a run stopped partway"), listed
    assert f"`smsgw billing run --month {MONTH}`" in listed
    shown = cli(config, "billing", "show", "--month", MONTH, "--account", "acme")
    assert shown.returncode == 0 and f"{MONTH} is incomplete" in shown.stderr, shown.stderr

    again = cli(config, "billing", "run", "--month", MONTH)
    assert again.returncode == 0, again.stderr
    assert f"{MONTH}: a run before this one stopped partway" in again.stdout
    assert {p.name for p in directory.iterdir()} == {"acme.txt", "beta.txt", "gamma.txt", "_summary.txt"}
    assert month_listing(config) == f"{MONTH}: 3 account file(s) + summary"


async def test_a_daemon_killed_mid_run_leaves_the_month_incomplete_and_its_next_start_bills_it(
    tmp_path: Path,
) -> None:
    relay = free_port()
    config, cfg = prepare(tmp_path, relay, last_billed="2026-01", traffic=TRAFFIC)
    directory = cfg.billing_dir / MONTH
    env, trigger, marker = held_env(tmp_path)
    # The daemon's own start-up run (real time: February is long over) bills February first.
    log = (tmp_path / "daemon.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "-c", str(config), "run", "--json-logs"],
        cwd=ROOT,
        stdout=log,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    try:
        held = (await asyncio.to_thread(wait_for_text, marker, 30)).split()
        assert "beta.txt" in held[1], held
        os.killpg(proc.pid, signal.SIGKILL)  # a crash mid-month: acme's file written, beta's not
        proc.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
        trigger.unlink(missing_ok=True)
    assert (directory / "acme.txt").exists() and not (directory / "_summary.txt").exists()
    assert month_listing(config).startswith(f"{MONTH}: INCOMPLETE")

    # The next start (April by its clock) bills February, and March, as it would have.
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: at(2026, 4, 2, 9)) as gw:
        await gw.until(lambda: last_billed(gw.store) == "2026-03")
    # The temporary file of beta's, which the kill left, is removed by the next run: no other run can
    # be writing it while that one holds the month (it stayed for good, a whole account's file).
    # The record that the month's mails were queued is beside the files, and its lock.
    assert {p.name for p in directory.iterdir()} == {
        "acme.txt",
        "beta.txt",
        "gamma.txt",
        "_summary.txt",
        RECORD,
        LOCK,
    }
    assert month_listing(config) == f"{MONTH}: 3 account file(s) + summary"
