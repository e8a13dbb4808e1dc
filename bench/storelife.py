"""A mail's rows through the store alone, in fixed batches: instructions and WAL frames a mail.

bench/instructions.py counts the whole daemon, whose group commits take as many mails as arrived in a
loop turn: under callgrind the batching moves with the machine's load by ±2-4 %, more than a change
to one statement or one index is worth. Here the same rows are written in batches of a fixed size,
one commit a batch as in the daemon, whose commits mix the steps of the mails in flight: `--batch`
mails accepted (`insert_email` and the usage upsert) and their parts claimed, the batch before
submitted, the one before that reported delivered, on a database with `--history` finished mails
beside (bench/statements_preload.py). The figures do not move from run to run.

The loop runs under callgrind, instrumented only while the mails are written (the start, the
history and Python's imports are not counted); the WAL frames are read from the WAL file, by table
or index (`dbstat`), as bench/walpages.py reads them. `--drop NAME` and `--sql STATEMENT` (repeatable)
change the schema of the scratch database first: what an index or a different one costs, before a
migration is written for it. What is not written here (the conversation, the receipt's row in
`dlrs` by other paths, the outbox) is the daemon's as before: compare like with like.

Usage: python bench/storelife.py [--mails 2000] [--batch 3] [--history 20000] [--drop INDEX]
                                 [--sql STATEMENT] [--native] [--keep DIR]
It is a benchmark, not a test: it asserts nothing and only prints. Needs valgrind unless --native.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import e2e
from bench.statements_preload import preload
from bench.walpages import frames, owners
from gateway import logging as gateway_logging
from gateway.store.db import Store
from gateway.store.records import Acceptance, ClaimedPart, NewMessage, NewPart

TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.M)
TEXT = "Benchmark message number {}. The meeting is moved to 10:00, room 4."


def acceptance(i: int, account: int, user: tuple[int, str]) -> Acceptance:
    """bench/e2e_client.py's mail as the daemon accepts it: one recipient, one part."""
    text = TEXT.format(i)
    message_id = f"bench-{i}@acme.example"
    key = hashlib.sha256(f"{message_id}\0{user[1]}\0{text}\0".encode()).hexdigest()
    part = NewPart(seq=1, data_coding=0, payload=text.encode(), udh=b"", text=text)
    recipient = f"+4860{i % 10_000_000:07d}"
    return Acceptance(
        mail_from=user[1],
        client_ip="127.0.0.1",
        account_id=account,
        user_id=user[0],
        header_message_id=message_id,
        dedup_key=key,
        subject=f"Bench {i}",
        text=text,
        messages=[NewMessage(recipient=recipient, source="+48100200300", text=text, coding=0, parts=[part])],
        validity_seconds=86400.0,
    )


def life(store: Store, first: int, count: int, batch: int, account: int, user: tuple[int, str]) -> None:
    """`count` mails, `batch` at a time, one commit a batch as the daemon's group commit takes a loop
    turn's writes: the batch accepted and claimed, the one before submitted, the one before that
    reported delivered (the daemon's commits mix the steps of the mails in flight)."""
    queue, db = store.queue, store.db
    scopes, periods = [f"user:{user[0]}", f"account:{account}"], ["2026-12", "2026-12-06"]
    claimed: list[list[ClaimedPart]] = []
    starts = list(range(first, first + count, batch))
    for step in range(len(starts) + 2):
        with db.transaction():
            if step < len(starts):
                for i in range(starts[step], min(starts[step] + batch, first + count)):
                    queue.insert_email(acceptance(i, account, user))
                    store.accounts.add_usage(scopes, periods, 1)
            if 1 <= step <= len(starts):
                for part in claimed[step - 1]:
                    queue.mark_submitted(part.id, "sim", f"{part.id:010x}", part.message_id)
            if step >= 2:
                for part in claimed[step - 2]:
                    raw = f"id:{part.id:010x} sub:001 dlvrd:001 stat:DELIVRD err:000 text:"
                    queue.record_report("sim", f"{part.id:010x}", "delivered", None, raw)
            claimed.append(queue.claim_due(batch) if step < len(starts) else [])


def child(args: argparse.Namespace) -> None:
    """The measured process: the database made and changed, then a signal to the parent, the mails."""
    gateway_logging.configure(json=True, level="WARNING")  # the store's work, not its log lines
    state = Path(args.child)
    cfg = state / "config.toml"
    cfg.write_text(e2e.config(state, e2e.free_port(), e2e.free_port()))
    db = state / "smsgw.db"
    preload(db, cfg, args.history, 0)
    conn = sqlite3.connect(db)
    for name in args.drop:
        conn.execute(f'DROP INDEX "{name}"')
    for sql in args.sql:
        conn.execute(sql)
    conn.commit()
    conn.close()
    store = Store.open(db, integrity=False)
    store.db.conn.execute("PRAGMA wal_autocheckpoint=0")
    account = store.accounts.get_account("bench").id
    user = store.db.conn.execute("SELECT id, email FROM users WHERE account_id = ?", (account,)).fetchone()
    life(store, 0, 30, args.batch, account, user)  # statements prepared, caches filled
    start = len(frames(Path(f"{db}-wal")))
    print("ready", flush=True)
    sys.stdin.readline()
    life(store, 30, args.mails, args.batch, account, user)
    print("done", flush=True)
    sys.stdin.readline()
    wal = Path(f"{db}-wal")
    written = frames(wal)[start:]
    named = owners(db, wal)
    by_name = collections.Counter(named.get(page, "(freed since)") for page, _commit in written)
    commits = sum(1 for _page, commit in written if commit)
    print(f"frames {len(written)} commits {commits}", flush=True)
    for name, n in by_name.most_common():
        print(f"btree {n} {name}", flush=True)
    store.close()


def measure(args: argparse.Namespace, out: Path) -> tuple[int, list[str]]:
    """Instructions of the mails' loop (callgrind on only meanwhile) and the child's frame lines."""
    with tempfile.TemporaryDirectory() as state:
        command = [sys.executable, __file__, "--child", state, *forwarded(args)]
        if not args.native:
            command = [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}/callgrind.%p",
                f"--log-file={out}/valgrind.%p.log",
                *command,
            ]
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert proc.stdin is not None and proc.stdout is not None
        lines: list[str] = []

        def until(word: str) -> None:
            while (line := proc.stdout.readline()) and line.strip() != word:
                lines.append(line)

        def control(*what: str) -> None:
            if not args.native:
                subprocess.run(["callgrind_control", *what, str(proc.pid)], check=True, capture_output=True)

        until("ready")
        control("--instr=on")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        until("done")
        control("-d")
        control("--instr=off")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        lines.extend(proc.stdout.readlines())
        proc.wait(300)
        if args.native:
            return 0, lines
        dumps = sorted(out.glob(f"callgrind.{proc.pid}.*"), key=lambda p: int(p.suffix[1:]))
        match = TOTALS.search(dumps[-1].read_bytes())
        return (int(match.group(1)) if match else 0), lines


def forwarded(args: argparse.Namespace) -> list[str]:
    extra = [f"--drop={name}" for name in args.drop] + [f"--sql={sql}" for sql in args.sql]
    return [f"--mails={args.mails}", f"--batch={args.batch}", f"--history={args.history}", *extra]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mails", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=3, help="mails a commit (the bench's daemon: about 3)")
    ap.add_argument("--history", type=int, default=20000)
    ap.add_argument("--drop", action="append", default=[], help="drop this index first (scratch only)")
    ap.add_argument("--sql", action="append", default=[], help="run this statement first (scratch only)")
    ap.add_argument("--native", action="store_true", help="frames only, without callgrind")
    ap.add_argument("--keep", type=Path, help="keep callgrind's files here (for callgrind_annotate)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        instructions, lines = measure(args, args.keep)
    else:
        with tempfile.TemporaryDirectory() as out:
            instructions, lines = measure(args, Path(out))
    n = args.mails
    frame_line = next(line for line in lines if line.startswith("frames "))
    _, total, _, commits = frame_line.split()
    changed = ", ".join([*(f"without {d}" for d in args.drop), *args.sql]) or "the schema as it is"
    print(
        f"a mail's rows through the store: {n} mails, {args.batch} a commit,",
        f"{args.history} beside:",
        changed,
    )
    if instructions:
        print(f"  instructions a mail {instructions / n / 1e3:8.1f} k")
    print(f"  WAL frames a mail   {int(total) / n:8.2f}   (commits a mail {int(commits) / n:.3f})")
    for line in lines:
        if line.startswith("btree "):
            _, count, name = line.split(maxsplit=2)
            print(f"    {int(count) / n:6.2f}  {name.strip()}")


if __name__ == "__main__":
    main()
