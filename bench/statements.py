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
import random
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

from gateway.adminrules import seed_accounts  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.daemon import Daemon  # noqa: E402
from gateway.store.db import Store  # noqa: E402

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


TICK = 10  # VM instructions per progress-handler call


class Counter:
    """Statements per shape (the trace callback) and the VM instructions each shape ran (the
    progress handler: a tick goes to the statement begun last, right for one connection on one
    thread unless a cursor is read while another statement runs, which the daemon does not do)."""

    def __init__(self) -> None:
        self.on = False
        self.counts: collections.Counter[str] = collections.Counter()
        self.steps: collections.Counter[str] = collections.Counter()
        self.last = "(before any statement)"
        self.samples: dict[str, str] = {}  # one statement as executed, per shape

    def __call__(self, sql: str) -> None:
        if self.on:
            key = normalise(sql)
            self.counts[key] += 1
            self.last = key
            if key not in self.samples:
                self.samples[key] = sql

    def tick(self) -> int:
        if self.on:
            self.steps[self.last] += TICK
        return 0


EMAIL = (
    "INSERT INTO emails (id, account_id, user_id, mail_from, client_ip, header_message_id, subject, text,"
    " received_at) VALUES (?,?,?,?,?,?,?,?,?)"
)
MESSAGE = (
    "INSERT INTO messages (id, email_id, account_id, recipient, source, text, coding, parts_total, state,"
    " created_at, expires_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
PART = (
    "INSERT INTO parts (id, message_id, seq, state, attempts, next_attempt_at, expires_at, destination,"
    " source, data_coding, payload, udh, text, link, smsc_id, submitted_at, done_at)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def preload(db: Path, cfg_path: Path, history: int, backlog: int) -> None:
    """`history` finished messages of the bench account and `backlog` waiting ones, by direct SQL in
    big transactions, before the daemon opens the file (the store creates and migrates it first)."""
    cfg = load_config(cfg_path)
    store = Store.open(db)
    seed_accounts(store, cfg)
    account = store.accounts.get_account("bench").id
    user = store.db.conn.execute("SELECT id, email FROM users WHERE account_id = ?", (account,)).fetchone()
    store.close()
    rnd = random.Random(1)
    now = time.time()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA foreign_keys = OFF")
    (email0,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM emails").fetchone()
    (message0,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()
    (part0,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM parts").fetchone()
    text = "History message. The meeting is moved to 10:00, room 4."
    span = 6 * 86400.0  # inside the retention: the purge must not delete it during the run
    chunk = 50_000
    t0 = time.perf_counter()
    for start in range(0, history, chunk):
        emails, messages, parts, dlrs, outbox, convs, mos = [], [], [], [], [], [], []
        for i in range(start, min(history, start + chunk)):
            at = now - span + span * i / max(history, 1)
            eid, mid, pid = email0 + i + 1, message0 + i + 1, part0 + i + 1
            r = rnd.random()
            state = "delivered" if r < 0.90 else "failed" if r < 0.97 else "expired"
            phone = f"+4869{i % 1_000_000:07d}"
            emails.append(
                (eid, account, user[0], user[1], "127.0.0.1", f"<h{i}@acme.example>", f"H {i}", text, at)
            )
            messages.append(
                (mid, eid, account, phone, "+48100200300", text, 0, 1, state, at, at + 86400, at + 5)
            )
            smsc_id = f"hist-{i}" if state != "expired" else None
            parts.append(
                (pid, mid, 1, state, 1, at, at + 86400, phone, "+48100200300", 0, text.encode(), b"", text,
                 "sim" if smsc_id else None, smsc_id, at + 1 if smsc_id else None, at + 5)
            )  # fmt: skip
            if smsc_id:
                dlrs.append(("sim", smsc_id, "DELIVRD" if state == "delivered" else "UNDELIV", pid, at + 5))
            if state != "delivered":
                outbox.append(("dsn", "<>", user[1], b"bounce", "sent", 1, at + 6, mid, at + 6, at + 7))
            if i % 5 == 0:
                convs.append((phone, "+48100200300", user[1], account, "sms.example.com", text, at, at))
            if i % 50 == 0:
                mos.append(("sim", phone, "+48100200300", "ok", "mailed", at + 60, at + 60, account))
        with conn:
            conn.execute("BEGIN")
            conn.executemany(EMAIL, emails)
            conn.executemany(MESSAGE, messages)
            conn.executemany(PART, parts)
            conn.executemany(
                "INSERT INTO dlrs (link, smsc_id, status, part_id, received_at) VALUES (?,?,?,?,?)", dlrs
            )
            conn.executemany(
                "INSERT INTO outbox (kind, mail_from, rcpt, content, state, attempts, next_attempt_at,"
                " message_ref, created_at, sent_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                outbox,
            )
            conn.executemany(
                "INSERT INTO conversations (phone, number, user_email, account_id, domain, text, started_at,"
                " last_mt_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                convs,
            )
            conn.executemany(
                "INSERT INTO mo (link, source, destination, text, state, received_at, acked_at, account_id)"
                " VALUES (?,?,?,?,?,?,?,?)",
                mos,
            )
            conn.execute("COMMIT")
    # The backlog: the account's campaign, waiting a month (deferred), so that no link sends it.
    base = email0 + history
    for start in range(0, backlog, chunk):
        emails, messages, parts = [], [], []
        for i in range(start, min(backlog, start + chunk)):
            eid, mid, pid = base + i + 1, message0 + history + i + 1, part0 + history + i + 1
            phone = f"+4868{i % 1_000_000:07d}"
            emails.append(
                (eid, account, user[0], user[1], "127.0.0.1", f"<b{i}@acme.example>", f"B {i}", text, now)
            )
            messages.append(
                (mid, eid, account, phone, "+48100200300", text, 0, 1, "queued", now, now + 60 * 86400, None)
            )
            parts.append(
                (pid, mid, 1, "deferred", 0, now + 30 * 86400, now + 60 * 86400, phone, "+48100200300", 0,
                 text.encode(), b"", text, None, None, None, None)
            )  # fmt: skip
        with conn:
            conn.execute("BEGIN")
            conn.executemany(EMAIL, emails)
            conn.executemany(MESSAGE, messages)
            conn.executemany(PART, parts)
            conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    took = time.perf_counter() - t0
    print(f"preloaded {history} finished and {backlog} waiting messages of account bench in {took:.1f} s")


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
            found += [
                (key, row[3])
                for row in plan
                if re.match(r"SCAN (?!\d+ CONSTANT ROWS)|USE TEMP B-TREE", str(row[3]))
            ]
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


def report_steps(counter: Counter, n: int, top: int, compare: str | None) -> None:
    """The shapes by VM instructions per execution and in total (with a saved run's beside them)."""
    old: dict[str, list[int]] = json.loads(Path(compare).read_text())["shapes"] if compare else {}
    total = sum(counter.steps.values())
    print(f"\n  SQLite VM instructions per mail: {total / n:,.0f} (counted every {TICK})")
    per_exec = {k: counter.steps[k] / c for k, c in counter.counts.items() if c}

    def was(key: str) -> str:
        if key not in old or not old[key][0]:
            return ""
        return f"{old[key][1] / old[key][0]:>10,.0f}"

    head = f"{'steps/exec':>10} {'was':>10}" if old else f"{'steps/exec':>10}"
    print(f"\n  by steps per execution\n  {head}  {'execs':>7}  statement")
    for key, steps in sorted(per_exec.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {steps:>10,.0f} {was(key)}  {counter.counts[key]:>7}  {key[:140]}")
    print(f"\n  by total steps\n  {'per mail':>10}  {'steps/exec':>10}  {'execs':>7}  statement")
    for key, steps in counter.steps.most_common(top):
        c = counter.counts.get(key, 0)
        print(f"  {steps / n:>10,.0f}  {steps / c if c else 0:>10,.0f}  {c:>7}  {key[:140]}")
    if old:
        grown = [
            (per_exec[k] / max(old[k][1] / old[k][0], TICK), k)
            for k in per_exec
            if k in old and old[k][0] and per_exec[k] >= 200
        ]
        print("\n  grown against the saved run (steps per execution, this / that, of those ≥ 200 now)")
        for ratio, key in sorted(grown, reverse=True)[:top]:
            print(f"  {ratio:>8.1f}×  {per_exec[key]:>10,.0f}  {key[:140]}")


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
