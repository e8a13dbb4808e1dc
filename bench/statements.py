"""SQL per mail: statements, transactions and fsyncs the daemon spends on one mail→SMS→DLR.

Runs the daemon in this process (so that sqlite3's trace callback sees every statement on its
connection) against the built-in SMPP simulator in a process of its own, sends N single-recipient
mails over a few SMTP connections, waits until every message is final (its DLR processed),
and prints the statements per mail grouped by normalised text (literals and `IN (?, ?, …)` lists
folded), the transactions per mail, any full-table scan in the statements' query plans, and —
when `strace` is installed and may attach to this process — the fsync/fdatasync calls per mail
by thread (MainThread is the event loop).

It also counts SQLite VM instructions per statement shape (a progress handler on the daemon's
connection, each tick given to the statement the trace callback saw last: one connection, one
thread) and prints the shapes that cost most per execution and in total. `--history N` first
writes N finished messages of the bench account (with their parts, receipts, emails, some outbox
mail, conversations and MOs) and `--backlog N` N of its messages waiting (deferred a month, so no
link sends them), straight into the database before the daemon starts: a statement whose steps per
execution grow with them is one whose cost grows with the tables. Numbers ending in 13 fail (the
simulator's fail_suffixes), and every `--mo-every`th mail a phone answers (the control port), so
the failure and MO paths run; /metrics is scraped every 2 s as Prometheus would. `--save FILE`
writes the per-shape figures, `--compare FILE` prints them beside a saved run's.
The preload is in statements_preload.py, the counting and the printed figures in statements_count.py.

Usage: python bench/statements.py [--messages 2000] [--connections 8] [--top 40]
                                  [--history 500000] [--backlog 100000] [--save F] [--compare F]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e import config, count_lines, free_port, number, sender, spawn  # noqa: E402
from statements_count import TICK, Counter, report, report_steps  # noqa: E402
from statements_preload import preload  # noqa: E402

from gateway.config import load_config  # noqa: E402
from gateway.daemon import Daemon  # noqa: E402


async def scrape(port: int, stop: asyncio.Event) -> list[float]:
    """GET /metrics every 2 s, as Prometheus would (its counts run on a reader connection of their
    own, which the trace does not see); returns how long each took."""
    took = []
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read()
            )
            took.append(time.perf_counter() - t0)
        except OSError:
            pass
        try:
            await asyncio.wait_for(stop.wait(), 2)
        except TimeoutError:
            pass
    return took


async def answers(port: int, n: int, every: int, stop: asyncio.Event) -> int:
    """A phone answers the last SMS the simulator took, about once per `every` mails sent."""
    sent = 0
    while not stop.is_set() and sent < n // every:
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(json.dumps({"op": "mo", "reply_to_last": True, "text": "Yes, fine"}).encode() + b"\n")
            await w.drain()
            if json.loads(await r.readline()).get("ok"):
                sent += 1
            w.close()
        except (OSError, ValueError):
            pass
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except TimeoutError:
            pass
    return sent


NOTED_PLAN = re.compile(r"SCAN (?!\d+ CONSTANT ROWS)|USE TEMP B-TREE")


def scans(db: Path, samples: dict[str, str]) -> list[tuple[str, str]]:
    """(statement, plan line) for every full-table SCAN and every temporary b-tree (a sort or a
    DISTINCT: pages of the temp store allocated, zeroed and freed at each execution) in the plans of
    the statements seen."""
    found = []
    with closing(sqlite3.connect(db, timeout=5)) as conn:
        for key, sql in samples.items():
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")):
                continue
            try:
                plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            except sqlite3.Error:
                continue
            found += [(key, row[3]) for row in plan if NOTED_PLAN.match(str(row[3]))]
    return found


def start_strace(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    """fsync/fdatasync of every thread of `pid` (and threads started later), or None without strace."""
    if shutil.which("strace") is None:
        return None
    proc = subprocess.Popen(
        ["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", str(out), "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # attaching takes a moment; nothing is sent before it is done
    if proc.poll() is not None:
        return None
    return proc


def finished(db: Path) -> int:
    """Read through a connection of our own: the daemon's is the loop's, and polling it would count."""
    with closing(sqlite3.connect(db, timeout=5)) as conn:
        sql = "SELECT COUNT(*) FROM messages WHERE state IN ('delivered', 'failed', 'expired')"
        return conn.execute(sql).fetchone()[0]


async def run(args: argparse.Namespace) -> None:
    n, conns, top = args.messages, args.connections, args.top
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        smtp, smpp, control, web = free_port(), free_port(), free_port(), free_port()
        cfg_path = state / "config.toml"
        text = config(state, smtp, smpp).replace("control_port = 0", f"control_port = {control}")
        cfg_path.write_text(text + f'\n[web]\nenabled = true\nlisten = "127.0.0.1:{web}"\n')
        if args.history or args.backlog:
            preload(load_config(cfg_path).db_path, cfg_path, args.history, args.backlog)
        sim = await spawn(cfg_path, ["simulator", "run"], smpp)
        stop = asyncio.Event()
        daemon = Daemon(load_config(cfg_path))
        task = asyncio.create_task(daemon.run(stop))
        try:
            await asyncio.wait_for(daemon.ready.wait(), 120)
            await asyncio.sleep(0.5)  # the SMPP bind
            counter = Counter()
            daemon.store.db.conn.set_trace_callback(counter)
            daemon.store.db.conn.set_progress_handler(counter.tick, TICK)
            trace = state / "fsync.trace"
            strace = start_strace(os.getpid(), trace)
            db = daemon.config.db_path
            jobs = [(i, [number(i)]) for i in range(n)]
            done0 = await asyncio.to_thread(finished, db)
            counter.on = True
            t0 = time.perf_counter()
            side = asyncio.Event()
            scraper = asyncio.create_task(scrape(web, side))
            phones = asyncio.create_task(answers(control, n, args.mo_every, side)) if args.mo_every else None
            await asyncio.gather(*(sender(smtp, jobs[k::conns]) for k in range(conns)))
            deadline = time.perf_counter() + 300
            while time.perf_counter() < deadline and await asyncio.to_thread(finished, db) - done0 < n:
                await asyncio.sleep(0.1)
            side.set()
            scrapes = await scraper
            mos = await phones if phones else 0
            took = time.perf_counter() - t0
            await asyncio.sleep(args.linger)  # the last group fsync, after-commit work, housekeeping
            counter.on = False
            fsyncs: collections.Counter[str] | None = None
            if strace is not None:
                strace.send_signal(signal.SIGINT)
                strace.wait(10)
                names = {t.native_id: t.name for t in threading.enumerate()}
                fsyncs: collections.Counter[str] = collections.Counter()
                for line in trace.read_text().splitlines():
                    m = re.match(r"(\d+)\s+(fsync|fdatasync)\(", line)
                    if m:
                        thread = re.sub(r"_\d+$", "", names.get(int(m.group(1)), "other"))
                        fsyncs[f"{m.group(2)} on {thread}"] += 1
            sent = count_lines(state / "simulator.jsonl")
            print(
                f"history {args.history}, backlog {args.backlog}: {mos} MO answers, {len(scrapes)} /metrics"
                f" scrapes (slowest {max(scrapes, default=0) * 1000:.0f} ms)"
            )
            report(counter.counts, n, sent, took, fsyncs, top)
            report_steps(counter, n, top, args.compare)
            if args.save:
                Path(args.save).write_text(  # noqa: ASYNC240 (after the measurement)
                    json.dumps(
                        {
                            "history": args.history,
                            "backlog": args.backlog,
                            "messages": n,
                            "shapes": {k: [counter.counts[k], counter.steps[k]] for k in counter.counts},
                        },
                        indent=1,
                    )
                )
            print("\n  full scans and temporary b-trees in these statements' plans (EXPLAIN QUERY PLAN):")
            for key, line in scans(db, counter.samples) or [("", "none")]:
                print(f"  {line:30}  {key[:120]}")
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
            sim.terminate()
            sim.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--history", type=int, default=0, help="finished messages of the account written first")
    ap.add_argument("--backlog", type=int, default=0, help="messages of the account waiting (deferred)")
    ap.add_argument("--mo-every", type=int, default=50, help="a phone answers per this many mails (0: none)")
    ap.add_argument("--linger", type=float, default=16.0, help="seconds counted after the last DLR")
    ap.add_argument("--save", help="write the per-shape figures here (JSON)")
    ap.add_argument("--compare", help="print a saved run's steps per execution beside this run's")
    args = ap.parse_args()
    from gateway import logging as gwlog

    gwlog.configure(json=True, level="ERROR")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
