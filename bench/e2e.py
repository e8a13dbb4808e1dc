"""End-to-end benchmark: SMTP → gateway → built-in SMPP simulator, printed as figures.

Runs the daemon and the SMSC simulator as two processes of their own (so the figures and the RSS
are the gateway's alone) on a temporary state directory and measures three things:
1. throughput: N mails over M SMTP connections; mails/s accepted, SMS/s submitted end to end
   (first mail sent → last SMS logged by the simulator);
2. accept latency: end of DATA → `250`, p50/p99, at a steady offered rate (default 100 mails/s);
3. memory: peak RSS of the daemon with `--queued` SMS waiting (SMSC unreachable).

The throughput run is made twice, with the daemon logging at WARNING and at INFO (the production
default), so that the cost of logging shows; `--log-level` chooses (repeatable).

With `--pipelining` each throughput run is followed by one whose client pipelines MAIL, RCPT and
DATA in one write (RFC 2920), as mail servers do, and the difference is printed.

Usage: python bench/e2e.py [--messages 5000] [--connections 8] [--rate 100] [--queued 100000]
                           [--log-level WARNING --log-level INFO] [--intake-processes N] [--pipelining]
With `--intake-processes N` the relay runs in N worker processes; the CPU figure then adds theirs.
The load generator is in e2e_client.py, what is read of /proc and of the database in e2e_procfs.py.
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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script, only bench/ itself is on the path

from bench.e2e_client import SENDER, number, sender  # noqa: E402
from bench.e2e_procfs import children as children  # noqa: E402 (instructions.py reads e2e.children)
from bench.e2e_procfs import count_lines, cpu_seconds, cpu_split, db_bytes, rss_mb  # noqa: E402


def loop_runner() -> Callable[..., Any]:
    """uvloop where installed, as the daemon runs: the load generator must stay the thin side."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


INTAKE_PROCESSES = 0  # [smtp] intake_processes of the daemon under test (--intake-processes)


def config(
    state: Path,
    smtp: int,
    smpp: int,
    *,
    protocol: str = "smpp",
    link_port: int | None = None,
    window: int = 100,
    link_extra: str = "",
) -> str:
    """The benchmarks' config: the simulator on `smpp` (its CIMD2 port when `protocol` is cimd2),
    the daemon's one link to `link_port` (default: the simulator itself)."""
    return f"""
[gateway]
domains = ["sms.example.com"]
state_dir = "{state}"
queue_high_water = 10000000

[smtp]
listen = "127.0.0.1:{smtp}"
submission_listen = "127.0.0.1:0"
intake_processes = {INTAKE_PROCESSES}

[mail]
relay = "127.0.0.1:{free_port()}"

[[smsc]]
name = "sim"
type = "{protocol}"
port = {smpp if link_port is None else link_port}
system_id = "smsgw"
password = "secret"
window = {window}
max_per_second = 100000
{link_extra}
[simulator]
enabled = false  # the gateway does not start it; `smsgw simulator run` does
smpp_port = {smpp if protocol == "smpp" else 0}
cimd2_port = {smpp if protocol == "cimd2" else 0}
control_port = 0
log = "{state}/simulator.jsonl"
dlr_delay_seconds = 0

[[account]]
name = "bench"
relay_networks = ["127.0.0.0/8"]
users = ["{SENDER}"]
"""


def configured(state: Path) -> tuple[Path, int, int]:
    """The daemon's config on `state` for two free ports: (its path, the SMTP port, the simulator's)."""
    smtp, smpp = free_port(), free_port()
    cfg = state / "config.toml"
    cfg.write_text(config(state, smtp, smpp))
    return cfg, smtp, smpp


def stop(*procs: subprocess.Popen[bytes] | None, seconds: float = 60) -> None:
    """Each process ended in turn (the daemon before the simulator it is bound to); None: not started."""
    for proc in procs:
        if proc is not None:
            proc.terminate()
            proc.wait(seconds)


async def spawn(
    cfg: Path, command: list[str], port: int, settle: float = 0.0, log_level: str = "WARNING"
) -> subprocess.Popen[bytes]:
    """`smsgw COMMAND` as its own process, returned once it listens on `port` (plus `settle` s).

    Its log goes to /dev/null: rendering and writing each line still costs the daemon its CPU (as
    under journald), but no terminal or file slows it down further."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(cfg), *command, "--log-level", log_level],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if await listening(port) and (command != ["run"] or await greeting(port)):
        await asyncio.sleep(settle)
        return proc
    proc.kill()
    raise SystemExit(f"smsgw {' '.join(command)} did not start")


async def greeting(port: int, seconds: float = 30.0) -> bool:
    """Whether the SMTP server on `port` greets a client within `seconds`.

    The relay port listens from the daemon's start (the socket is passed to the intake worker), but
    the worker answers only once it has imported and started, about a second later on a busy
    machine: measured from the first connection, that start-up counted as the mails' CPU."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    try:
        line = await asyncio.wait_for(reader.readline(), seconds)
        writer.write(b"QUIT\r\n")
        await writer.drain()
        return line.startswith(b"220")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


async def listening(port: int, seconds: float = 20.0) -> bool:
    """Whether something accepts connections on `port` within `seconds`."""
    for _ in range(int(seconds / 0.05)):
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        w.close()
        return True
    return False


@asynccontextmanager
async def gateway(
    *, simulator: bool = True, log_level: str = "WARNING"
) -> AsyncIterator[tuple[Path, int, subprocess.Popen[bytes]]]:
    """A daemon (and, unless told otherwise, a simulator) on a fresh state directory."""
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        cfg, smtp, smpp = configured(state)  # without the simulator nothing listens: all stays queued
        # The SMSC runs in its own process so that the figures are the gateway's alone.
        procs = [await spawn(cfg, ["simulator", "run"], smpp)] if simulator else []
        try:
            # settle: the SMPP bind
            procs.append(await spawn(cfg, ["run"], smtp, settle=0.5, log_level=log_level))
            yield state, smtp, procs[-1], (procs[0] if simulator else None)
        finally:
            stop(*reversed(procs), seconds=30)


async def throughput(n: int, conns: int, log_level: str, pipelining: bool = False) -> tuple[float, float]:
    """Prints the run's figures; returns (SMS/s end to end, daemon CPU ms per message)."""
    async with gateway(log_level=log_level) as (state, smtp, proc, sim):
        jobs = [(i, [number(i)]) for i in range(n)]
        main0, workers0 = cpu_split(proc.pid)
        db0 = db_bytes(state / "smsgw.db")
        rig0 = (cpu_seconds(sim.pid), time.process_time())
        t0 = time.perf_counter()
        await asyncio.gather(*(sender(smtp, jobs[k::conns], pipelining=pipelining) for k in range(conns)))
        accepted = time.perf_counter() - t0
        log = state / "simulator.jsonl"
        deadline = time.perf_counter() + 300
        while count_lines(log) < n and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        done = time.perf_counter() - t0
        sent = count_lines(log)
        await asyncio.sleep(1)  # let the last delivery reports be processed
        main1, workers1 = cpu_split(proc.pid)
        rig1 = (cpu_seconds(sim.pid), time.process_time())
        cpu = main1 - main0 + workers1 - workers0
        rss, hwm = rss_mb(proc.pid)
        how = ", client pipelining (RFC 2920)" if pipelining else ""
        print(f"throughput: {n} mails over {conns} connections, daemon logging at {log_level}{how}")
        print(f"  accepted  {n / accepted:8.0f} mails/s  ({accepted:.2f} s)")
        print(f"  submitted {sent / done:8.0f} SMS/s end to end  ({sent} SMS in {done:.2f} s)")
        print(f"  daemon CPU {1000 * cpu / n:.2f} ms per mail+SMS+DLR (user+sys, all threads)")
        if INTAKE_PROCESSES:
            print(
                f"    of which main process {1000 * (main1 - main0) / n:.2f} ms,"
                f" {INTAKE_PROCESSES} intake worker(s) {1000 * (workers1 - workers0) / n:.2f} ms"
            )
        print(
            f"  the rig: simulator {1000 * (rig1[0] - rig0[0]) / n:.2f} ms, this load generator"
            f" {1000 * (rig1[1] - rig0[1]) / n:.2f} ms per mail (they share the machine)"
        )
        print(f"  daemon RSS {rss:.0f} MB (peak {hwm:.0f} MB)")
        grown = db_bytes(state / "smsgw.db") - db0
        print(f"  database {grown / n / 1024:.1f} KB per mail (its pages in use, the WAL's included)")
        return sent / done, 1000 * cpu / n


async def latency(rate: float, seconds: float) -> None:
    async with gateway() as (_state, smtp, _proc, _sim):
        n = int(rate * seconds)
        conns = 4
        lat: list[float] = []
        jobs = [(i, [number(i)]) for i in range(n)]
        await asyncio.gather(
            *(sender(smtp, jobs[k::conns], lat, interval=conns / rate) for k in range(conns))
        )
        lat.sort()
        p50 = statistics.median(lat) * 1000
        p99 = lat[int(len(lat) * 0.99) - 1] * 1000
        print(f"accept latency at {rate:.0f} mails/s over {seconds:.0f} s ({n} mails, {conns} connections)")
        print(f"  end of DATA → 250: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lat[-1] * 1000:.1f} ms")


async def memory(queued: int) -> None:
    async with gateway(simulator=False) as (_state, smtp, proc, _sim):
        per_mail = 10
        mails = queued // per_mail
        jobs = [(i, [number(i * per_mail + k) for k in range(per_mail)]) for i in range(mails)]
        t0 = time.perf_counter()
        await asyncio.gather(*(sender(smtp, jobs[k::8]) for k in range(8)))
        took = time.perf_counter() - t0
        await asyncio.sleep(3)
        rss, hwm = rss_mb(proc.pid)
        print(
            f"memory: {queued} SMS queued ({mails} mails × {per_mail} recipients, accepted in {took:.1f} s)"
        )
        print(f"  daemon RSS {rss:.0f} MB, peak {hwm:.0f} MB")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--queued", type=int, default=100_000)
    ap.add_argument("--only", choices=["throughput", "latency", "memory"])
    ap.add_argument(
        "--log-level",
        action="append",
        choices=["DEBUG", "INFO", "WARNING"],
        help="daemon log level for the throughput run; repeatable (default: WARNING, then INFO,"
        " the production default, so that the cost of logging shows)",
    )
    ap.add_argument("--intake-processes", type=int, default=0, help="[smtp] intake_processes (default 0)")
    ap.add_argument(
        "--pipelining",
        action="store_true",
        help="also run each throughput run with a client that pipelines MAIL, RCPT and DATA (RFC 2920)"
        " and print the difference; the plain runs stay as before, so figures remain comparable",
    )
    args = ap.parse_args()
    global INTAKE_PROCESSES
    INTAKE_PROCESSES = args.intake_processes
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    if args.only in (None, "throughput"):
        for level in args.log_level or ["WARNING", "INFO"]:
            rate, cpu = await throughput(args.messages, args.connections, level)
            if args.pipelining:
                rate_p, cpu_p = await throughput(args.messages, args.connections, level, pipelining=True)
                print(
                    f"  pipelining: {rate_p / rate - 1:+.0%} SMS/s, daemon CPU {cpu_p - cpu:+.2f} ms per mail"
                    f" ({cpu_p / cpu - 1:+.0%})"
                )
    if args.only in (None, "latency"):
        await latency(args.rate, args.seconds)
    if args.only in (None, "memory"):
        await memory(args.queued)


if __name__ == "__main__":
    loop_runner()(main())
