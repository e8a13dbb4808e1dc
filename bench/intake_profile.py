"""Where the intake worker's time goes, per Python function: a cProfile of the worker under e2e's load.

`bench/instructions.py` counts a process's instructions and, with `--top`, names the C functions
that run them (the interpreter's, SQLite's): it cannot say which Python function a mail's cost
belongs to. This bench runs the daemon natively with one intake worker and a cProfile running
inside the worker (started by a `sitecustomize` put on the worker's path, so the daemon's code is
not changed for it), sends `--warmup` mails, clears the profile, sends `--messages` mails over
`--connections` connections, and prints the `--top` functions by inclusive time a mail.

cProfile adds a few hundred nanoseconds to every call, so functions that make many small calls weigh
more here than on the CPU, and its figures are time, the kernel's included (a reply's `write` holds
its `send`): it tells where to look, and callgrind of the function found (N calls against none) says
what it costs. The garbage collector's runs in the worker over the same mails are printed too (a
collection's time falls on whichever function allocated at the time).

Usage: python bench/intake_profile.py [--messages 500] [--warmup 50] [--connections 8]
                                      [--connection-per-mail] [--top 25] [--save FILE]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import e2e
from bench.e2e_client import send_numbered
from bench.instructions import wait_reported

# Run by the worker's interpreter at its start. SIGUSR1 clears the profile (the warm-up's calls and
# the imports leave it), SIGUSR2 writes it; the handlers run in the main thread, the profiled one.
SITECUSTOMIZE = """
import os, sys
if "gateway.intake_child" in sys.orig_argv and os.environ.get("INTAKE_PROFILE_OUT"):
    import cProfile, signal
    import gc, json, time
    _prof = cProfile.Profile()
    _gc = {"runs": [0, 0, 0], "seconds": [0.0, 0.0, 0.0], "collected": [0, 0, 0]}
    _t = [0.0]
    def _timed(phase, info):
        if phase == "start":
            _t[0] = time.perf_counter()
        else:
            g = info["generation"]
            _gc["runs"][g] += 1
            _gc["seconds"][g] += time.perf_counter() - _t[0]
            _gc["collected"][g] += info["collected"]
    gc.callbacks.append(_timed)
    def _clear(*_a):
        _prof.disable(); _prof.clear()
        for v in _gc.values():
            v[:] = [0 * x for x in v]
        _prof.enable()
    def _dump(*_a):
        _prof.disable(); _prof.dump_stats(os.environ["INTAKE_PROFILE_OUT"])
        with open(os.environ["INTAKE_PROFILE_OUT"] + ".gc", "w") as f:
            json.dump({**_gc, "tracked": len(gc.get_objects()), "frozen": gc.get_freeze_count()}, f)
        _prof.enable()
    signal.signal(signal.SIGUSR1, _clear)
    signal.signal(signal.SIGUSR2, _dump)
    _prof.enable()
"""


def written(path: Path) -> bool:
    """The profile is in the file and was last written a while ago (the worker writes it in pieces)."""
    return path.exists() and path.stat().st_size > 0 and time.time() - path.stat().st_mtime > 0.3


async def run(args: argparse.Namespace, tmp: Path, out: Path) -> None:
    e2e.INTAKE_PROCESSES = 1
    site = tmp / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(site), os.environ.get("PYTHONPATH"))))
    os.environ["INTAKE_PROFILE_OUT"] = str(out)
    cfg, smtp, smpp = e2e.configured(tmp)
    sim = await e2e.spawn(cfg, ["simulator", "run"], smpp)
    daemon = None
    try:
        daemon = await e2e.spawn(cfg, ["run"], smtp, settle=1.0, log_level=args.log_level)
        (worker,) = e2e.children(daemon.pid)
        db = tmp / "smsgw.db"
        w, n, conns, per_mail = args.warmup, args.messages, args.connections, args.connection_per_mail
        await send_numbered(smtp, 0, w, conns, per_mail)
        await wait_reported(db, w, 300)
        os.kill(worker, 10)  # SIGUSR1
        await asyncio.sleep(0.5)
        await send_numbered(smtp, w, n, conns, per_mail)
        await wait_reported(db, w + n, 600)
        os.kill(worker, 12)  # SIGUSR2
        for _ in range(100):
            await asyncio.sleep(0.1)
            if written(out):
                break
    finally:
        e2e.stop(daemon, sim)


def report(out: Path, n: int, top: int) -> None:
    stats = pstats.Stats(str(out))
    rows = []
    for (file, line, func), (_cc, calls, own, inclusive, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).name}:{line}:{func}" if line else func
        rows.append((inclusive, own, calls, where))
    rows.sort(reverse=True)
    gc_file = Path(str(out) + ".gc")
    if gc_file.exists():
        got = json.loads(gc_file.read_text())
        print(
            f"garbage collections in the worker, {n} mails: runs by generation {got['runs']}, "
            f"ms {[round(s * 1e3, 1) for s in got['seconds']]}, collected {got['collected']}; "
            f"{got['tracked']} objects tracked, {got['frozen']} frozen"
        )
    print(f"intake worker, {n} mails: inclusive us a mail, own us a mail, calls a mail, function")
    for inclusive, own, calls, where in rows[:top]:
        print(f"  {inclusive / n * 1e6:9.1f} {own / n * 1e6:8.1f} {calls / n:8.2f}  {where}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--connection-per-mail", action="store_true")
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--save", type=Path, help="keep the profile here (pstats format)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.save or Path(tmp) / "intake.prof"
        asyncio.run(run(args, Path(tmp), out))
        report(out, args.messages, args.top)


if __name__ == "__main__":
    main()
