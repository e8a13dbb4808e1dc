"""WAL frames a mail→SMS→DLR writes, by the table or index each frame's page belongs to.

Every page a commit changes is written to the WAL as a frame (the page and a 24-byte header), its
checksum computed over the whole page, fsync'd, and later copied into the database by the
checkpointer: the frames a mail writes cost the main process CPU (the checksums alone about 4 % of
it) and the disk its bytes. This bench tells which b-trees those pages belong to, so that a change
of the schema or of a statement can be judged by the frames it saves.

The daemon runs natively against the built-in SMPP simulator (as bench/e2e.py runs them). After
`--warmup` mails have their reports, the WAL's valid frames are counted; then `--messages` mails are
sent over `--connections` connections, and once every SMS has its report the frames written since
are read from the WAL file (their page numbers and commit marks) and each page is named by SQLite's
`dbstat` on a copy of the database. The WAL must not be checkpointed and restarted meanwhile (the
daemon's passive checkpoints start past 16 MB): keep `--messages` at a few hundred.

`--drop NAME` (repeatable) drops that index from the state's database before the daemon starts, to
measure what it costs on a scratch database: a change of schema is still a migration's to make.

Usage: python bench/walpages.py [--messages 300] [--warmup 50] [--connections 8] [--drop INDEX]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import sqlite3
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import e2e
from bench.e2e_client import send_numbered
from bench.instructions import wait_reported, without_indexes

WAL_HEADER = 32
FRAME_HEADER = 24


def frames(wal: Path) -> list[tuple[int, bool]]:
    """The WAL's valid frames in order, each as (page number, whether it ends a commit).

    A frame belongs to the current WAL when its salts are the header's; frames left from before the
    last restart of the WAL carry other salts and end the walk (the checksums are not verified)."""
    data = wal.read_bytes()
    if len(data) < WAL_HEADER:
        return []
    page_size = struct.unpack(">I", data[8:12])[0]
    salts = data[16:24]
    found: list[tuple[int, bool]] = []
    at = WAL_HEADER
    while at + FRAME_HEADER + page_size <= len(data):
        page, commit = struct.unpack(">II", data[at : at + 8])
        if data[at + 8 : at + 16] != salts:
            break
        found.append((page, commit != 0))
        at += FRAME_HEADER + page_size
    return found


def salts(wal: Path) -> bytes:
    with wal.open("rb") as f:
        return f.read(WAL_HEADER)[16:24]


def owners(db: Path, wal: Path) -> dict[int, str]:
    """Each page's b-tree (table or index) by `dbstat`, read from a copy of the database and WAL."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.db"
        shutil.copyfile(db, copy)
        shutil.copyfile(wal, Path(f"{copy}-wal"))
        conn = sqlite3.connect(copy)
        try:
            named = dict(conn.execute("SELECT pageno, name FROM dbstat"))
        finally:
            conn.close()
    named.setdefault(1, "sqlite_schema")
    return named


async def run(args: argparse.Namespace) -> None:
    e2e.INTAKE_PROCESSES = args.intake_processes
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        cfg, smtp, smpp = e2e.configured(state)
        db, wal = state / "smsgw.db", state / "smsgw.db-wal"
        await without_indexes(cfg, smtp, args.drop)
        sim = await e2e.spawn(cfg, ["simulator", "run"], smpp)
        daemon = await e2e.spawn(cfg, ["run"], smtp, log_level=args.log_level)
        try:
            w, n, conns = args.warmup, args.messages, args.connections
            await send_numbered(smtp, 0, w, conns)
            await wait_reported(db, w, 300)
            await asyncio.sleep(1.0)  # the last turn's writes
            start, salt = len(frames(wal)), salts(wal)
            await send_numbered(smtp, w, n, conns)
            await wait_reported(db, w + n, 600)
            await asyncio.sleep(1.0)
            if salts(wal) != salt:
                raise SystemExit("the WAL was checkpointed and restarted meanwhile: send fewer --messages")
            written = frames(wal)[start:]
            named = owners(db, wal)
        finally:
            e2e.stop(daemon, sim)
    commits = sum(1 for _page, commit in written if commit)
    by_name = collections.Counter(named.get(page, "(freed since)") for page, _commit in written)
    print(
        f"WAL frames per mail→SMS→DLR: {n} mails after {w} of warm-up, {conns} connection(s),"
        f" daemon logging at {args.log_level}{', dropped: ' + ', '.join(args.drop) if args.drop else ''}"
    )
    print(
        f"  frames a mail {len(written) / n:6.2f}   commits a mail {commits / n:5.3f}"
        f"   frames a commit {len(written) / max(commits, 1):6.1f}"
    )
    for name, count in by_name.most_common():
        print(f"  {count / n:6.2f}  {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--intake-processes", type=int, default=1)
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    ap.add_argument("--drop", action="append", default=[], help="drop this index first (scratch only)")
    args = ap.parse_args()
    e2e.loop_runner()(run(args))


if __name__ == "__main__":
    main()
