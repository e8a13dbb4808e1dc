"""Where the daemon's main process spends its time a mail, by Python function (cProfile), inclusive.

`bench/instructions.py` counts what a mail costs each process but names C functions (the interpreter,
SQLite): it does not say which of the daemon's own functions the instructions are spent under. This
runs the same load natively with the main process's event-loop thread under cProfile, switched on after
the warm-up by a signal and dumped by another once every SMS has its delivery report, and prints the
functions with the most inclusive time, per mail and as a share of the profiled time. Profiling slows
the loop (every call is timed) and so changes how the daemon batches: read the shares as where to look,
then measure a change with `bench/instructions.py` and callgrind.

The intake worker and the loop's helper threads (fsync, checkpoints) are not profiled.

Usage: python bench/pyprofile.py [--messages 500] [--warmup 50] [--connections 8] [--top 25]
                                 [--intake-processes 1] [--log-level INFO] [--keep FILE] [--callers NAME]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import e2e
from bench.e2e_client import send_numbered
from bench.instructions import wait_reported

ON, DUMP = signal.SIGRTMIN + 5, signal.SIGRTMIN + 6

# Run as the daemon: the two signals switch the profiler on and dump it; then the daemon's own entry.
WRAPPER = f"""
import cProfile, signal, sys
import time
prof, out = cProfile.Profile(time.thread_time_ns, 1e-9), sys.argv.pop(1)
signal.signal({int(ON)}, lambda *_: prof.enable())
def _dump(*_):
    prof.disable()
    prof.dump_stats(out)
signal.signal({int(DUMP)}, _dump)
sys.argv[0] = "smsgw"
from gateway.cli.main import main
raise SystemExit(main())
"""


async def start(cfg: Path, port: int, log_level: str, out: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, str(out), "--config", str(cfg), "run", "--log-level", log_level],
        cwd=e2e.ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if await e2e.listening(port, 60) and await e2e.greeting(port, 60):
        return proc
    proc.kill()
    raise SystemExit("smsgw run did not start")


def _written(path: Path) -> bool:
    return path.exists()


async def run(args: argparse.Namespace, out: Path) -> None:
    e2e.INTAKE_PROCESSES = args.intake_processes
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        cfg, smtp, smpp = e2e.configured(state)
        sim = await e2e.spawn(cfg, ["simulator", "run"], smpp)
        daemon = None
        try:
            daemon = await start(cfg, smtp, args.log_level, out)
            await asyncio.sleep(1.0)
            db = state / "smsgw.db"
            w, n, conns = args.warmup, args.messages, args.connections
            await send_numbered(smtp, 0, w, conns)
            await wait_reported(db, w, 120)
            await asyncio.sleep(1.0)
            os.kill(daemon.pid, ON)
            t0 = time.monotonic()
            await send_numbered(smtp, w, n, conns)
            await wait_reported(db, w + n, 600)
            await asyncio.sleep(1.0)
            os.kill(daemon.pid, DUMP)
            wall = time.monotonic() - t0
            for _ in range(100):
                if _written(out):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
        finally:
            e2e.stop(daemon, sim)
    report(out, n, args.top, wall, args.callers)


def report(path: Path, n: int, count: int, wall: float, callers: list[str]) -> None:
    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"main process's loop thread under cProfile: {n} mails, {total:.2f} s profiled, {wall:.0f} s wall")
    print(f"{'incl µs/mail':>12} {'share':>6} {'calls/mail':>10}  function")
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][3], reverse=True)  # type: ignore[attr-defined]
    for (file, line, func), (_cc, nc, _tt, ct, _callers) in rows[:count]:
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if line else file
        print(f"{ct / n * 1e6:12.1f} {ct / total:6.1%} {nc / n:10.2f}  {func} ({where})")
    for name in callers:
        stats.sort_stats("cumulative").print_callers(name)
        stats.print_callees(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--intake-processes", type=int, default=1)
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--callers", action="append", default=[], help="print callers and callees of NAME")
    ap.add_argument("--keep", type=Path, help="keep the profile here (for pstats)")
    args = ap.parse_args()
    if args.keep:
        asyncio.run(run(args, args.keep))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(run(args, Path(tmp) / "main.prof"))


if __name__ == "__main__":
    main()
