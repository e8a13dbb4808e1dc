"""A route's link down with SMS queued for it: what the daemon writes while it waits, and how soon the
first SMS goes once the link is back, printed as figures.

Two SMPP links on the simulator's server over TCP: "main" serves the exclusive prefix +4860 and
nothing listens on its port (its binds are refused), "backup" is the default link and is up. `--queued`
SMS to +4860 numbers are accepted, then for `--seconds` the statements and the committed writes on the
daemon's database connection are counted, and the rows they changed. Then a simulator starts on main's
port: the figure is the time from the link's state turning active to the first submit at that
simulator, `--rounds` times (the link is dropped and the SMS queued again between rounds).

With `--one-link` main is the only link (no link up at all while it is down).

Usage: python bench/link_down.py [--queued 2000] [--seconds 20] [--rounds 3] [--one-link]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.statements_count import normalise  # noqa: E402
from gateway.config import load_config  # noqa: E402
from smsc.base import LinkState  # noqa: E402
from tests.conftest import DOMAIN, Running, config_text, free_port, mail, running_gateway, smsc_link  # noqa: E402
from tests.fakes.smsc import HappySMSC  # noqa: E402

PER_MAIL = 50


def config(tmp: Path, port_main: int, port_backup: int | None) -> Path:
    """main (+4860, exclusive) and the default link backup; with `port_backup` None, main alone."""
    if port_backup is None:
        text = config_text(tmp, smsc_port=port_main)
    else:
        text = config_text(tmp, smsc_port=port_main, smsc_extra='prefixes = ["+4860"]\nexclusive = true')
        text += smsc_link("backup", port_backup, "max_per_second = 1000")
    path = tmp / "config.toml"
    path.write_text(text)
    path.chmod(0o640)
    return path


async def queue(gw: Running, n: int, round_: int) -> None:
    for start in range(0, n, PER_MAIL):
        rcpts = [f"60{round_}{i:06d}@{DOMAIN}" for i in range(start, min(n, start + PER_MAIL))]
        res = await gw.send(mail(rcpts, "The plant is closed today"), rcpts)
        assert res.error is None and not res.refused, res


def waiting(gw: Running) -> int:
    sql = "SELECT COUNT(*) FROM parts WHERE state IN ('queued', 'deferred', 'active')"
    return int(gw.store.db.conn.execute(sql).fetchone()[0])


async def measure_down(gw: Running, seconds: float) -> tuple[collections.Counter[str], int, int]:
    """(statements by shape, write transactions, rows changed) over `seconds` with main down."""
    conn = gw.store.db.conn
    counts: collections.Counter[str] = collections.Counter()
    conn.set_trace_callback(lambda sql: counts.update((normalise(sql),)))
    changes = conn.total_changes
    await asyncio.sleep(seconds)
    conn.set_trace_callback(None)
    writes = sum(n for sql, n in counts.items() if sql.upper().startswith("BEGIN IMMEDIATE"))
    return counts, writes, conn.total_changes - changes


async def link_up(gw: Running, port: int) -> tuple[float, HappySMSC]:
    """Starts the simulator on main's port: seconds from main active to its first submit there."""
    link = gw.daemon.dispatcher.links["main"]
    smsc = HappySMSC(port=port)
    await smsc.__aenter__()
    up = None
    while not smsc.received:
        if up is None and link.state == LinkState.ACTIVE:
            up = time.perf_counter()
        await asyncio.sleep(0.0005)
    first = time.perf_counter()
    return first - (up if up is not None else first), smsc


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port_main = free_port()
        async with HappySMSC() as backup:
            cfg = load_config(config(Path(tmp), port_main, None if args.one_link else backup.port))
            async with running_gateway(cfg) as gw:
                if not args.one_link:
                    await gw.until(lambda: gw.daemon.dispatcher.links["backup"].state == LinkState.ACTIVE)
                ups: list[float] = []
                for round_ in range(args.rounds):
                    await queue(gw, args.queued, round_)
                    await asyncio.sleep(2.0)  # settled into waiting
                    counts, writes, rows = await measure_down(gw, args.seconds)
                    per_minute = 60.0 / args.seconds
                    print(
                        f"round {round_}: {args.queued} SMS waiting for main down, over {args.seconds:.0f} s:"
                        f" {sum(counts.values()) * per_minute:.0f} statements/min,"
                        f" {writes * per_minute:.0f} write transactions/min,"
                        f" {rows * per_minute:.0f} rows changed/min"
                    )
                    for sql, n in counts.most_common(args.top):
                        print(f"    {n * per_minute:8.0f}/min  {sql[:120]}")
                    took, smsc = await link_up(gw, port_main)
                    ups.append(took)
                    print(f"round {round_}: main up -> first submit {took * 1000:.1f} ms")
                    await gw.until(lambda: waiting(gw) == 0, timeout=120)
                    await smsc.__aexit__(None, None, None)
                    await gw.until(lambda: gw.daemon.dispatcher.links["main"].state != LinkState.ACTIVE)
                print(
                    f"link up -> first submit: median {statistics.median(ups) * 1000:.1f} ms,"
                    f" max {max(ups) * 1000:.1f} ms over {len(ups)} rounds"
                )


if __name__ == "__main__":
    # The daemon's log lines (every submit, every report) would bury the figures.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser()
    parser.add_argument("--queued", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=6)
    parser.add_argument("--one-link", action="store_true", help="main alone, no other link up")
    asyncio.run(main(parser.parse_args()))
