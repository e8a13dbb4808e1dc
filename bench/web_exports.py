"""Panel CSV exports side by side: what they cost the event loop and the dashboard, timed.

Generates `--messages` failed messages of one account (each with a reason the export says in words),
straight into a fresh store, then serves the real panel (uvicorn on uvloop, as the daemon) and, for 0,
1, 2 and 4 clients each downloading /messages.csv over and over (`--rows` rows each, read as fast as
they come, each 1 s after a refusal), measures for `--seconds`:

- the loop's stalls: a task asks to wake every 5 ms and records how late it woke (what every SMTP
  session and link on the same loop waits besides);
- the dashboard (GET /) as another admin sees it: median and worst time of a request every 100 ms;
- the exports answered (200) and refused at the cap (503).

The clients run in processes of their own, so that their reading does not take the panel's GIL. On a
busy machine with few cores the figures move from run to run: compare runs made one after the other.

Usage: python bench/web_exports.py [--messages 200000] [--rows 100000] [--seconds 8] [--dir DIR]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import socket
import statistics
import sys
import tempfile
import time
from multiprocessing.managers import DictProxy, ListProxy
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acl.lockout import AuthGuard  # noqa: E402
from acl.passwords import hash_password  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.store.db import Store  # noqa: E402
from gateway.web.app import WebContext  # noqa: E402
from gateway.web.server import WebServer  # noqa: E402

ADMIN, PASSWORD = "boss@acme.example", "bench password 1"
START = 1_767_222_000.0  # 2026-01-01 local
BATCH = 50_000
REASONS = ["UNDELIV err:001", "ESME_RINVDSTADR (0x0B)", "EXPIRED err:000", None]


def build(path: Path, n: int) -> None:
    store = Store.open(path)
    store.accounts.add_account("acme")
    store.accounts.add_user(ADMIN, "acme", password_hash=hash_password(PASSWORD))
    store.accounts.set_user(ADMIN, role="admin")
    conn = store.db.conn
    done = 0
    while done < n:
        rows = range(done, min(n, done + BATCH))
        with store.db.transaction():
            conn.executemany(
                "INSERT INTO emails (id, account_id, mail_from, text, received_at) VALUES (?, 1, ?, 't', ?)",
                [(i + 1, f"user{i % 50}@acme.example", START + i) for i in rows],
            )
            conn.executemany(
                "INSERT INTO messages (id, email_id, account_id, recipient, source, text, coding,"
                " parts_total, state, created_at, expires_at, reason)"
                " VALUES (?, ?, 1, ?, '+48100200300', 't', 0, 1, 'failed', ?, ?, ?)",
                [
                    (i + 1, i + 1, f"+4860{i % 10_000_000:07d}", START + i, START + i + 3600, REASONS[i % 4])
                    for i in rows
                ],
            )
        done += len(rows)
    store.close()


def log_in(base: str) -> str:
    with httpx.Client(base_url=base) as c:
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
        assert token is not None
        r = c.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf": token[1]})
        assert r.status_code == 303, r.text
        return "; ".join(f"{k}={v}" for k, v in c.cookies.items())


def export_loop(port: int, cookie: str, stop: Event, counts: DictProxy[str, int]) -> None:
    """Exports one after another, each read to its end (HTTP/1.0: not chunked, closed at the end)."""
    ask = f"GET /messages.csv?state=failed HTTP/1.0\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n"
    while not stop.is_set():
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.sendall(ask.encode())
            first = s.recv(65536)
            status = first.split(b" ", 2)[1].decode() if first else "closed"
            while s.recv(1 << 20):
                pass
        counts[status] = counts.get(status, 0) + 1
        if status != "200":
            time.sleep(1)  # as a browser's user would, after the page saying why


def dashboard_loop(base: str, cookie: str, stop: Event, took: ListProxy[float]) -> None:
    with httpx.Client(base_url=base, headers={"cookie": cookie}, timeout=60) as c:
        while not stop.is_set():
            t0 = time.perf_counter()
            assert c.get("/").status_code == 200
            took.append(time.perf_counter() - t0)
            time.sleep(0.1)


async def lateness(stop: asyncio.Event, late: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(0.005)
        late.append(time.perf_counter() - t0 - 0.005)


async def measure(web: WebContext, clients: int, seconds: float) -> None:
    server = WebServer(web)
    port = await server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        cookie = await asyncio.to_thread(log_in, base)
        other = await asyncio.to_thread(log_in, base)  # the dashboard's admin, another session
        # The clients in processes of their own: in the panel's, their reading took the GIL from the loop.
        spawn = multiprocessing.get_context("spawn")
        with spawn.Manager() as manager:
            stop, loop_stop = spawn.Event(), asyncio.Event()
            counts: DictProxy[str, int] = manager.dict()
            took_shared: ListProxy[float] = manager.list()
            late: list[float] = []
            procs = [
                spawn.Process(target=export_loop, args=(port, cookie, stop, counts)) for _ in range(clients)
            ]
            procs.append(spawn.Process(target=dashboard_loop, args=(base, other, stop, took_shared)))
            for p in procs:
                p.start()
            for _ in range(600):  # the processes started, and the dashboard answered once
                if len(took_shared):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1)  # the exports under way
            del took_shared[:]
            probe = asyncio.create_task(lateness(loop_stop, late))
            await asyncio.sleep(seconds)
            stop.set()
            loop_stop.set()
            await probe
            for p in procs:
                await asyncio.to_thread(p.join)
            took = list(took_shared)
            counted = dict(counts)
        late.sort()
        p99 = late[int(len(late) * 0.99)] if late else 0.0
        print(
            f"{clients:>7}  {counted.get('200', 0):>5} {counted.get('503', 0):>5}"
            f"  {statistics.median(took or [0]) * 1000:>8.1f} {max(took or [0]) * 1000:>8.1f} ms"
            f"  {statistics.median(late) * 1000:>7.2f} {p99 * 1000:>7.1f} {late[-1] * 1000:>7.1f} ms"
            f"  ({len(took)} dashboards)"
        )
    finally:
        await server.stop()


async def run(path: Path, rows: int, seconds: float) -> None:
    store = Store.open(path)
    store.db.serve()
    cfg = parse_config(
        f'[gateway]\ndomains = ["sms.example.com"]\nstate_dir = "{path.parent}"\n'
        '[web]\nenabled = true\nlisten = "127.0.0.1:0"\n',
        source="bench",
        base_dir=path.parent,
        links_required=False,
    )
    web = WebContext(cfg, store, AuthGuard(100, 300))
    from gateway.web import messages

    messages.CSV_MAX = rows
    head = f"{'exports':>7}  {'200':>5} {'503':>5}  {'dashboard median/max':>20}"
    print(head + f"  {'loop late median/p99/max':>27}")
    try:
        for clients in (0, 1, 2, 4):
            await measure(web, clients, seconds)
    finally:
        web.counts.close()
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--rows", type=int, default=100_000, help="rows in one export (the panel's cap)")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="smsgw-webexports-"))
    path = base / "bench.db"
    if not path.exists():
        t0 = time.perf_counter()
        build(path, args.messages)
        print(f"generated {args.messages:,} messages in {time.perf_counter() - t0:.1f} s ({path})")
    uvloop.run(run(path, args.rows, args.seconds))


if __name__ == "__main__":
    main()
