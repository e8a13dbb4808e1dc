"""SQL per mail: statements, transactions and fsyncs the daemon spends on one mail→SMS→DLR.

Runs the daemon in this process (so that sqlite3's trace callback sees every statement on its
connection) against the built-in SMPP simulator in a process of its own, sends N single-recipient
mails over a few SMTP connections, waits until every message is final (its DLR processed),
and prints the statements per mail grouped by normalised text (literals and `IN (?, ?, …)` lists
folded), the transactions per mail, any full-table scan in the statements' query plans, and —
when `strace` is installed and may attach to this process — the fsync/fdatasync calls per mail
by thread (MainThread is the event loop).

Usage: python bench/statements.py [--messages 2000] [--connections 8] [--top 40]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
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
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e import config, count_lines, free_port, number, sender, spawn  # noqa: E402

from gateway.config import load_config  # noqa: E402
from gateway.daemon import Daemon  # noqa: E402

_STRING = re.compile(r"'(?:[^']|'')*'")
_BLOB = re.compile(r"\bX'[0-9A-F]*'", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])")
_LIST = re.compile(r"\((?:\s*\?\s*,)+\s*\?\s*\)")
_SPACE = re.compile(r"\s+")


def normalise(sql: str) -> str:
    """One key per statement shape: bound values (expanded into the text by SQLite) become `?`."""
    sql = _BLOB.sub("?", sql)
    sql = _STRING.sub("?", sql)
    sql = _NUMBER.sub("?", sql)
    sql = _LIST.sub("(?…)", sql)
    return _SPACE.sub(" ", sql).strip()


class Counter:
    def __init__(self) -> None:
        self.on = False
        self.counts: collections.Counter[str] = collections.Counter()

        self.samples: dict[str, str] = {}  # one statement as executed, per shape

    def __call__(self, sql: str) -> None:
        if self.on:
            key = normalise(sql)
            self.counts[key] += 1
            if key not in self.samples:
                self.samples[key] = sql


def scans(db: Path, samples: dict[str, str]) -> list[tuple[str, str]]:
    """(statement, plan line) for every full-table SCAN in the plans of the statements seen."""
    found = []
    with closing(sqlite3.connect(db, timeout=5)) as conn:
        for key, sql in samples.items():
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")):
                continue
            try:
                plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            except sqlite3.Error:
                continue
            found += [(key, row[3]) for row in plan if re.match(r"SCAN (?!\d+ CONSTANT ROWS)", str(row[3]))]
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


async def run(n: int, conns: int, top: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        smtp, smpp = free_port(), free_port()
        cfg_path = state / "config.toml"
        cfg_path.write_text(config(state, smtp, smpp))
        sim = await spawn(cfg_path, ["simulator", "run"], smpp)
        stop = asyncio.Event()
        daemon = Daemon(load_config(cfg_path))
        task = asyncio.create_task(daemon.run(stop))
        try:
            await asyncio.wait_for(daemon.ready.wait(), 20)
            await asyncio.sleep(0.5)  # the SMPP bind
            counter = Counter()
            daemon.store.db.conn.set_trace_callback(counter)
            trace = state / "fsync.trace"
            strace = start_strace(os.getpid(), trace)
            db = daemon.config.db_path
            jobs = [(i, [number(i)]) for i in range(n)]
            counter.on = True
            t0 = time.perf_counter()
            await asyncio.gather(*(sender(smtp, jobs[k::conns]) for k in range(conns)))
            deadline = time.perf_counter() + 300
            while time.perf_counter() < deadline and await asyncio.to_thread(finished, db) < n:
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # the last group fsync and after-commit work
            counter.on = False
            took = time.perf_counter() - t0
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
            report(counter.counts, n, sent, took, fsyncs, top)
            print("\n  full scans in the plans of these statements (EXPLAIN QUERY PLAN):")
            for key, line in scans(db, counter.samples) or [("", "none")]:
                print(f"  {line:30}  {key[:120]}")
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            sim.terminate()
            sim.wait(30)


def report(
    counts: collections.Counter[str],
    n: int,
    sent: int,
    took: float,
    fsyncs: collections.Counter[str] | None,
    top: int,
) -> None:
    total = sum(counts.values())
    begins = sum(c for sql, c in counts.items() if sql.upper().startswith("BEGIN"))
    print(f"{n} single-recipient mails → {sent} SMS with delivery reports in {took:.1f} s")
    print(f"  SQL statements per mail:  {total / n:6.2f}")
    print(f"  transactions per mail:    {begins / n:6.2f}")
    if fsyncs is None:
        print("  fsyncs per mail:          (strace not available)")
    else:
        detail = ", ".join(f"{k} {v / n:.3f}" for k, v in sorted(fsyncs.items()))
        print(f"  fsyncs per mail:          {sum(fsyncs.values()) / n:6.3f}  ({detail or 'none'})")
    print("\n  per mail  statement")
    for sql, c in counts.most_common(top):
        print(f"  {c / n:8.3f}  {sql[:150]}")
    rest = counts.most_common()[top:]
    if rest:
        print(f"  {sum(c for _s, c in rest) / n:8.3f}  ({len(rest)} other statements)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    from gateway import logging as gwlog

    gwlog.configure(json=True, level="ERROR")
    asyncio.run(run(args.messages, args.connections, args.top))


if __name__ == "__main__":
    main()
