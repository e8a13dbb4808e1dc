"""The kernel's share of a mail → SMS → DLR: each process's and thread's user and system CPU, and its
system calls a mail by kind.

`bench/instructions.py` counts user-space instructions only; `bench/e2e.py` the CPU of each process.
This runs the same load (mails over 8 connections, one SMS and its report each) and reads, for the
daemon's main process and each intake worker: user and system CPU a mail of each thread
(/proc/PID/task, so the WAL fsync and checkpoint threads show apart from the event loop's, each with
its `comm`: "python3" for every thread the daemon starts, as Python names no OS thread before 3.14, so
the loop's is marked and the others told by their CPU), context switches a mail, and, with `--strace`,
the system calls a mail by kind (`strace -f -c` attached to each process after the warm-up). strace
slows every call it counts and so changes how the daemon batches (fewer mails a commit): read its
counts beside a run's CPU figures, not as part of them, and run it separately (the CPU of a run with
strace is not printed).

User and system CPU come from /proc's clock ticks (`SC_CLK_TCK`, 100 a second: 10 ms each), so a
figure a mail is good to a tick over the mails counted (0.005 ms a mail over 2,000 mails), which the
run prints; a thread's few ticks are no figure. Where the kernel keeps scheduler statistics
(/proc/PID/task/TID/schedstat, in ns) each thread's CPU a mail, user and system together, is read
from them too, to the nanosecond.

Usage: python bench/syscalls.py [--messages 2000] [--warmup 100] [--connections 8]
                                [--intake-processes 1] [--log-level INFO] [--strace] [--top 16]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import e2e
from bench.e2e_client import send_numbered
from bench.instructions import wait_reported

TICK = os.sysconf("SC_CLK_TCK")
ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$")

# Per thread: (user s, system s, CPU s from schedstat or None where the kernel keeps none, its name).
Threads = dict[int, tuple[float, float, float | None, str]]


def threads(pid: int) -> Threads:
    """User and system CPU seconds of each thread of `pid` (threads that ended are not counted), its
    CPU seconds on schedstat's nanosecond count, and its name (`comm`)."""
    out: Threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            name = (task / "comm").read_text().strip()
        except OSError:
            continue
        try:
            ran: float | None = int((task / "schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            ran = None
        out[int(task.name)] = (int(fields[11]) / TICK, int(fields[12]) / TICK, ran, name)
    return out


def switches(pid: int) -> int:
    """Context switches of every thread of `pid`, voluntary and not."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue
        total += sum(int(v) for v in re.findall(r"ctxt_switches:\s+(\d+)", text))
    return total


def counted(path: Path) -> dict[str, int]:
    """strace -c's table: calls by system call."""
    calls: dict[str, int] = {}
    for line in path.read_text().splitlines():
        if (m := ROW.match(line)) and m.group(2) != "total":
            calls[m.group(2)] = int(m.group(1))
    return calls


def report(name: str, pid: int, n: int, before: Threads, after: Threads, ctx: int) -> None:
    none: tuple[float, float, float | None, str] = (0.0, 0.0, 0.0, "")
    user = sum(after[t][0] - before.get(t, none)[0] for t in after)
    system = sum(after[t][1] - before.get(t, none)[1] for t in after)
    print(f"  {name}: user {1000 * user / n:.3f} ms, system {1000 * system / n:.3f} ms a mail (ticks),")
    print(f"    {ctx / n:.2f} context switches a mail; by thread (user, system ms a mail in ticks;")
    print("    CPU ms a mail from schedstat, user and system together, where the kernel keeps it):")
    for tid in sorted(after):
        u0, s0, r0, _ = before.get(tid, none)
        u1, s1, r1, thread = after[tid]
        u, s = u1 - u0, s1 - s0
        ran = None if r1 is None or r0 is None else r1 - r0
        if u + s > 0 or (ran or 0.0) > 0:
            what = " (the event loop's)" if tid == pid else ""
            cpu = "" if ran is None else f"  cpu {1000 * ran / n:.4f}"
            ticks = f"{round(u * TICK)}+{round(s * TICK)} ticks"
            print(
                f"      {tid:>8} {thread[:15]:15} {1000 * u / n:.3f} {1000 * s / n:.3f} ({ticks}){cpu}{what}"
            )


async def run(args: argparse.Namespace) -> None:
    e2e.INTAKE_PROCESSES = args.intake_processes
    async with e2e.gateway(log_level=args.log_level) as (state, smtp, proc, _sim):
        await send_numbered(smtp, 0, args.warmup, args.connections)
        await wait_reported(state / "smsgw.db", args.warmup, 120)
        pids = {"main process": proc.pid} | {
            f"intake worker {i + 1}": child for i, child in enumerate(e2e.children(proc.pid))
        }
        tracers: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        out = Path(tempfile.mkdtemp(prefix="syscalls-"))
        if args.strace:
            for name, pid in pids.items():
                path = out / f"{pid}.txt"
                command = ["strace", "-f", "-c", "-o", str(path), "-p", str(pid)]
                tracers[name] = (subprocess.Popen(command, stderr=subprocess.DEVNULL), path)
            await asyncio.sleep(1.0)  # attached to every thread
        before = {name: (threads(pid), switches(pid)) for name, pid in pids.items()}
        await send_numbered(smtp, args.warmup, args.messages, args.connections)
        await wait_reported(state / "smsgw.db", args.warmup + args.messages, 300)
        after = {name: (threads(pid), switches(pid)) for name, pid in pids.items()}
        for tracer, _path in tracers.values():
            tracer.send_signal(signal.SIGINT)
            tracer.wait(30)
        n = args.messages
        how = "with strace attached (its CPU not comparable)" if args.strace else "native"
        print(f"{n} mails over {args.connections} connections after {args.warmup}, {args.log_level}, {how}")
        if not args.strace:  # what one clock tick is worth here: a per-mail figure finer than it is noise
            tick = f"{1000 / TICK:g} ms"
            print(f"  CPU ticks of {tick}: user and system resolved to {1000 / TICK / n:.4f} ms a mail")
        for name in pids:
            (t0, c0), (t1, c1) = before[name], after[name]
            if not args.strace:
                report(name, pids[name], n, t0, t1, c1 - c0)
                continue
            calls = counted(tracers[name][1])
            print(f"  {name}: {sum(calls.values()) / n:.1f} system calls a mail, of which")
            for call, count in sorted(calls.items(), key=lambda kv: -kv[1])[: args.top]:
                print(f"    {count / n:7.2f} {call}")
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--intake-processes", type=int, default=1)
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    ap.add_argument("--strace", action="store_true", help="count system calls (strace -f -c) instead")
    ap.add_argument("--top", type=int, default=16)
    args = ap.parse_args()
    if args.strace and shutil.which("strace") is None:
        raise SystemExit("strace is not installed (apt-get install strace)")
    e2e.loop_runner()(run(args))


if __name__ == "__main__":
    main()
