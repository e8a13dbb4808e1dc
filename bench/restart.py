"""Restart with a full queue: time from `smsgw run` to the first SMS at the SMSC, printed as figures.

A daemon with no SMSC reachable accepts `--queued` SMS (mails of ten recipients over 8 SMTP
connections) and is stopped with SIGTERM, as systemd stops it. Then the simulator starts, and a
new daemon is started on the same state directory; the figures are the time from its process start
to its SMTP port answering and to the first SMS logged by the simulator, and its RSS once the
first SMS is out. What the restart costs is start-up recovery (parts caught `active`), migrations
and the first claim over a large queue: all of it must stay well under a second.

The daemon runs as installed: with its modules' bytecode cached. Where the machine writes none
(PYTHONDONTWRITEBYTECODE=1) every start compiled some 290 modules, about 0.35 s no installed daemon
spends; here each daemon gets PYTHONPYCACHEPREFIX, a temporary directory warmed by the first start.
After a clean stop the start skips its whole-file check (`gateway.store.startcheck`); `--check`
removes the record of that stop before each start, to measure a start that reads the whole file
(the first after a crash, a restore or an upgrade, or once a week).

Usage: python bench/restart.py [--queued 100000] [--rounds 3] [--intake-processes N] [--check]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import e2e  # noqa: E402


def answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def fill(cfg: Path, smtp: int, queued: int) -> float:
    """The first daemon: accepts `queued` SMS that cannot go out, then stops. Returns the seconds taken."""
    proc = await e2e.spawn(cfg, ["run"], smtp)
    try:
        per_mail = 10
        mails = queued // per_mail
        jobs = [(i, [e2e.number(i * per_mail + k) for k in range(per_mail)]) for i in range(mails)]
        t0 = time.perf_counter()
        await asyncio.gather(*(e2e.sender(smtp, jobs[k::8]) for k in range(8)))
        return time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(60)


async def restart(cfg: Path, state: Path, smtp: int, check: bool) -> tuple[float, float, float]:
    """(seconds to the SMTP port, seconds to the first SMS, RSS MB then) of one start."""
    if check:  # as after a crash: nothing vouches for the file, the start reads it whole
        (state / "smsgw.db.stopped").unlink(missing_ok=True)
    log = state / "simulator.jsonl"
    before = e2e.count_lines(log)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(cfg), "run", "--log-level", "INFO"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    listening = first = 0.0
    try:
        deadline = t0 + 60
        while time.perf_counter() < deadline:
            now = time.perf_counter() - t0
            if not listening and answers(smtp):
                listening = now
            if e2e.count_lines(log) > before:
                first = now
                break
            await asyncio.sleep(0.002)
        rss, _hwm = e2e.rss_mb(proc.pid)
        return listening, first, rss
    finally:
        proc.terminate()
        proc.wait(60)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queued", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--intake-processes", type=int, default=0, help="[smtp] intake_processes (default 0)")
    ap.add_argument("--check", action="store_true", help="every start reads the whole file")
    args = ap.parse_args()
    e2e.INTAKE_PROCESSES = args.intake_processes
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as pycache:
        # Every daemon this runs inherits it: the filling one compiles and caches, the restarts read.
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = pycache
        print(f"bytecode cached in PYTHONPYCACHEPREFIX={pycache}, warmed by the first start, as installed")
        state = Path(tmp)
        smtp, smpp = e2e.free_port(), e2e.free_port()
        cfg = state / "config.toml"
        cfg.write_text(e2e.config(state, smtp, smpp))
        took = await fill(cfg, smtp, args.queued)
        print(f"queued {args.queued} SMS in {took:.1f} s (no SMSC reachable); daemon stopped with SIGTERM")
        sim = await e2e.spawn(cfg, ["simulator", "run"], smpp)
        try:
            firsts: list[float] = []
            for r in range(args.rounds):
                listening, first, rss = await restart(cfg, state, smtp, args.check)
                firsts.append(first)
                print(
                    f"  start {r + 1}: SMTP answers after {listening:.2f} s, first SMS at the SMSC after"
                    f" {first:.2f} s, RSS {rss:.0f} MB"
                )
            median = statistics.median(firsts)
            how = "each reading the whole file" if args.check else "each after a clean stop"
            print(f"restart → first submit: median {median:.2f} s over {args.rounds} starts, {how}")
        finally:
            sim.terminate()
            sim.wait(30)


if __name__ == "__main__":
    asyncio.run(main())
