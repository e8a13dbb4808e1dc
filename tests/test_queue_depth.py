"""The queue's depth (the high-water mark's figure, status's "queued") is counted off the event
loop: on the loop's connection the COUNT read every waiting part once a second, 10-30 ms with
200,000 waiting (the default mark), each time a stall of every SMTP session and link."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from pathlib import Path

from gateway.queuedepth import QueueDepth
from gateway.smtp.accept import accept
from gateway.store.db import Store
from tests.conftest import free_port, mail, make_config, running_gateway
from tests.test_faults import smtp_code, to
from tests.test_store import Clock, acceptance


async def test_the_depth_is_not_counted_on_the_loops_connection(tmp_path: Path) -> None:
    port = free_port()  # no SMSC: everything stays queued
    async with running_gateway(make_config(tmp_path, smsc_port=port, queue_high_water=3)) as gw:
        seen: list[str] = []
        gw.store.db.conn.set_trace_callback(seen.append)
        try:
            numbers = [to(f"60112{i:04d}") for i in range(3)]
            assert (await gw.send(mail(numbers, "Fill the queue"), numbers)).error is None
            await gw.until(lambda: gw.daemon.dispatcher.backlog == 3, timeout=5)
            assert smtp_code(await gw.send(mail(to("601123456"), "One too many"))) == 451
            await asyncio.sleep(1.5)  # a count a second, were it on the loop
        finally:
            gw.store.db.conn.set_trace_callback(None)
        assert seen, "the trace saw the acceptance"
        assert not [sql for sql in seen if "COUNT(*) FROM parts" in sql]


async def test_a_slow_count_is_repeated_less_often(tmp_path: Path) -> None:
    # Each look at the clock is 0.1 s later: the count took 0.1 s, so the next comes 2 s after it
    # (twenty times as long), not after 1 s.
    store = Store.open(tmp_path / "q.sqlite", clock=Clock())
    await accept(store, dataclasses.replace(acceptance([f"+4860100{i:04d}" for i in range(7)])))
    ticks = itertools.count()
    depth = QueueDepth(store.db.path, clock=lambda: next(ticks) / 10)
    try:
        depth.refresh()  # 0.0: the first count
        await asyncio.sleep(0)
        while depth._counting is not None:
            await asyncio.sleep(0.01)
        assert depth.value == 7
        assert depth._next == 2.3  # read at 0.3, plus 20 × 0.1
        for _ in range(18):  # 0.4 … 2.1: not yet
            depth.refresh()
            assert depth._counting is None
        depth.refresh()  # 2.2
        assert depth._counting is None
        depth.refresh()  # 2.3
        assert depth._counting is not None
    finally:
        await depth.close()
        store.close()
