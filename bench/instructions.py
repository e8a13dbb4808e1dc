"""Instructions per mail→SMS→DLR, counted by valgrind's callgrind: a figure that does not drift.

The CPU-time figures of `bench/e2e.py` move with the machine: on this VM the same code has measured
1.3 ms a mail on a fast day and 4.8 ms on a slow one, which hides a change of a few per cent. An
instruction count does not move with the machine's speed or its other load (the same code and input
give the same count within a fraction of a per cent), so it tells what a change of the code costs.

The daemon (and its intake workers) run under callgrind, not instrumented at first; the simulator
runs natively. After a warm-up (imports, caches, the SMPP bind, the first statements prepared) each
process's instrumentation is switched on, `--messages` mails are sent, and once every SMS has its
delivery report recorded the counters are dumped. The figure is instructions in user space per
mail, per process; the kernel's work (fsync, socket calls) is not in it (e2e.py's `sys` time is).
Repeated runs agree within about 1 %.

Instrumented, the daemon runs 20-50 times slower, so it batches more than it would natively when
the client is fast (group commits, claims and logging turns shared by more mails). With the
default of one connection, mails come one after another and each is its own batch: the least
favourable case, and the same in every run. `--connections 8` is nearer e2e.py's load.

Two things cost more here than on the CPU: `rep stosb`/`rep movsb` count one instruction per
byte, so memset and memcpy of SQLite's pages (ephemeral tables of `IN (…)` lists with more than
two values, RETURNING) weigh several times their real share; compare like with like.

`--drop NAME` (repeatable) drops that index from the state's database before the daemon starts under
callgrind (a first start, native, makes the schema): what an index costs, measured on a scratch
database; `bench/walpages.py` tells the WAL frames it writes.

With `--top N` the N functions (C level: the interpreter, SQLite, the JSON renderer, libc…) with the
most instructions of their own are printed per process, from callgrind_annotate.

Usage: python bench/instructions.py [--messages 300] [--warmup 50] [--intake-processes 1]
                                    [--log-level INFO] [--connections 1] [--connection-per-mail]
                                    [--top 0] [--keep DIR] [--drop INDEX]
It is a benchmark, not a test: it asserts nothing and only prints. Needs valgrind (Debian: valgrind).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import e2e
from bench.e2e_client import send_numbered

START_WAIT_SECONDS = 600  # the daemon's start under valgrind, its intake worker's greeting included
TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.M)


async def without_indexes(cfg: Path, smtp: int, names: list[str]) -> None:
    """The state's database made by a first start of the daemon, then these indexes dropped."""
    if not names:
        return
    first = await e2e.spawn(cfg, ["run"], smtp)
    first.terminate()
    first.wait(60)
    conn = sqlite3.connect(cfg.parent / "smsgw.db")
    try:
        for name in names:
            conn.execute(f'DROP INDEX "{name}"')
        conn.commit()
    finally:
        conn.close()


async def start_daemon(cfg: Path, port: int, log_level: str, out: Path) -> subprocess.Popen[bytes]:
    """`smsgw run` under callgrind (its intake workers too: they are started with exec)."""
    proc = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--trace-children=yes",
            "--instr-atstart=no",  # the start runs 3-5 times slower, not 20-50: within the workers' heartbeat
            f"--callgrind-out-file={out}/callgrind.%p",
            "--log-file=" + str(out / "valgrind.%p.log"),
            sys.executable,
            "-m",
            "gateway.cli",
            "--config",
            str(cfg),
            "run",
            "--log-level",
            log_level,
        ],
        cwd=e2e.ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(out / "daemon.stderr").open("wb"),  # why it ended, if it does (kept with --keep)
    )
    # On a loaded machine the worker's first answer may be an EOF (a worker started again after a
    # heartbeat missed under valgrind): the greeting is asked again until the wait is over.
    deadline = time.monotonic() + START_WAIT_SECONDS
    if await e2e.listening(port, START_WAIT_SECONDS):
        while (left := deadline - time.monotonic()) > 0:
            if await e2e.greeting(port, left):
                return proc
            await asyncio.sleep(1.0)
    proc.kill()
    raise SystemExit("smsgw run did not start under valgrind")


def all_pids(pid: int) -> list[int]:
    """The daemon and its intake workers (valgrind keeps each process's own pid)."""
    return [pid, *e2e.children(pid)]


def callgrind(command: str, pid: int, *args: str) -> None:
    subprocess.run(
        ["callgrind_control", command, *args, str(pid)], check=True, capture_output=True, timeout=120
    )


def reported(db: Path, n: int) -> int:
    """Parts that reached their end (delivered, or failed: the simulator fails numbers ending in 13)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM parts WHERE done_at IS NOT NULL").fetchone()[0]
    except sqlite3.Error:
        return 0


async def wait_reported(db: Path, n: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while reported(db, n) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {reported(db, n)} of {n} parts ended in {seconds:.0f} s")
        await asyncio.sleep(0.25)


def dumped(out: Path, pid: int) -> tuple[int, Path]:
    """Instructions of the last dump of `pid` (callgrind names dumps callgrind.PID.N)."""
    files = sorted(out.glob(f"callgrind.{pid}.*"), key=lambda p: int(p.suffix[1:]))
    path = files[-1]
    match = TOTALS.search(path.read_bytes())
    if match is None:
        raise SystemExit(f"no totals in {path}")
    return int(match.group(1)), path


def top(path: Path, n: int) -> None:
    """The functions with the most instructions of their own, shortened to file:function."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [line for line in text.splitlines() if re.match(r"^\s*[\d,]+ \(\s*[\d.]+%\)\s+\S", line)]
    for line in lines[1 : n + 1]:  # the first is PROGRAM TOTALS
        count, rest = line.split("%)", 1)
        where = rest.strip().split(" [", 1)[0]
        file, _, func = where.rpartition(":")
        print(f"    {count.strip()}%)  {Path(file).name}:{func}")


async def run(args: argparse.Namespace, out: Path) -> None:
    e2e.INTAKE_PROCESSES = args.intake_processes
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        cfg, smtp, smpp = e2e.configured(state)
        await without_indexes(cfg, smtp, args.drop)
        sim = await e2e.spawn(cfg, ["simulator", "run"], smpp)
        daemon = None
        try:
            daemon = await start_daemon(cfg, smtp, args.log_level, out)
            await asyncio.sleep(2.0)  # the SMPP bind under valgrind
            db = state / "smsgw.db"
            w, n, conns, per_mail = args.warmup, args.messages, args.connections, args.connection_per_mail
            await send_numbered(smtp, 0, w, conns, per_mail)
            await wait_reported(db, w, 600)
            await asyncio.sleep(1.0)  # the last turn's log lines and timers
            pids = all_pids(daemon.pid)
            for pid in pids:
                callgrind("--instr=on", pid)
            t0 = time.monotonic()
            await send_numbered(smtp, w, n, conns, per_mail)
            await wait_reported(db, w + n, 1200)
            await asyncio.sleep(1.0)
            for pid in pids:
                callgrind("-d", pid)
            wall = time.monotonic() - t0
        finally:
            e2e.stop(daemon, seconds=120)
            e2e.stop(sim, seconds=30)
    print(
        f"instructions per mail+SMS+DLR: {n} mails after {w} of warm-up, {conns} connection(s)"
        f"{' at a time, one per mail' if args.connection_per_mail else ''},"
        f" daemon logging at {args.log_level}, {args.intake_processes} intake worker(s)"
        f"{', dropped: ' + ', '.join(args.drop) if args.drop else ''}"
        f" ({wall:.0f} s under callgrind)"
    )
    total = 0
    for pid in pids:
        count, path = dumped(out, pid)
        total += count
        role = "main process" if pid == daemon.pid else "intake worker"
        print(f"  {role:14} {count / n / 1e6:7.3f} M")
        if args.top:
            top(path, args.top)
    print(f"  {'all':14} {total / n / 1e6:7.3f} M  (user space; the kernel's work is not counted)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument(
        "--connection-per-mail",
        action="store_true",
        help="open a connection for each mail (at most --connections at a time), as relay MTAs often do",
    )
    ap.add_argument("--intake-processes", type=int, default=1)
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    ap.add_argument("--top", type=int, default=0, help="print the N costliest functions per process")
    ap.add_argument("--drop", action="append", default=[], help="drop this index first (scratch only)")
    ap.add_argument("--keep", type=Path, help="keep callgrind's files here (for callgrind_annotate)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        asyncio.run(run(args, args.keep))
    else:
        with tempfile.TemporaryDirectory() as out:
            asyncio.run(run(args, Path(out)))


if __name__ == "__main__":
    main()
