"""The queue's depth (the high-water mark's figure, status's "queued") is counted off the event
loop: on the loop's connection the COUNT read every waiting part once a second, 10-30 ms with
200,000 waiting (the default mark), each time a stall of every SMTP session and link."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from pathlib import Path

from gateway.config import parse_config
from gateway.queuedepth import Backlog, QueueDepth, judge
from gateway.smtp.accept import accept
from gateway.store.db import Store
from gateway.store.queueage import waiting_by_account
from tests.conftest import config_text, free_port, mail, make_config, running_gateway
from tests.test_fair_claim import BETA, BOB
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
        # The depth's counts (`waiting_by_account`) by what they read: the waiting parts by account,
        # those in flight; other counts of parts run on the loop (a recipient's identical texts).
        depth = ("COUNT(*) FROM parts INDEXED BY parts_account_due", "COUNT(*) FROM parts WHERE state")
        assert not [sql for sql in seen if any(count in sql for count in depth)]


async def test_a_slow_count_is_repeated_less_often(tmp_path: Path) -> None:
    # Each look at the clock is 0.1 s later: the count took 0.1 s, so the next comes 2 s after it
    # (twenty times as long), not after 1 s.
    store = Store.open(tmp_path / "q.sqlite", clock=Clock())
    await accept(store, dataclasses.replace(acceptance([f"+4860100{i:04d}" for i in range(7)])))
    ticks = itertools.count()
    depth = QueueDepth(store.db.path, 100, clock=lambda: next(ticks) / 10)
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


async def test_past_the_mark_only_the_account_holding_the_queue_is_refused(tmp_path: Path) -> None:
    # A campaign of acme's queued behind an SMSC that is down fills the queue past its mark: acme's
    # next mail is answered 451, and beta's staff, with nothing waiting, still send. The mark used
    # to refuse every account's mail alike.
    text = config_text(tmp_path, smsc_port=free_port(), extra=BETA, queue_high_water=3)  # no SMSC
    async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)) as gw:
        numbers = [to(f"60112{i:04d}") for i in range(3)]
        assert (await gw.send(mail(numbers, "Spring campaign"), numbers)).error is None
        await gw.until(lambda: gw.daemon.dispatcher.backlog == 3, timeout=5)
        assert smtp_code(await gw.send(mail(to("601123456"), "Another one"))) == 451
        urgent = mail(to("609999999"), "The server room is flooding")
        urgent.replace_header("From", BOB)
        assert (await gw.send(urgent, sender=BOB)).error is None
        assert gw.store.admin.count_messages() == 4


def test_the_mark_is_shared_between_the_accounts_with_sms_waiting() -> None:
    assert judge({}, 100) == Backlog(0)
    assert judge({1: 99}, 100) == Backlog(99)  # below the mark: nobody
    assert judge({1: 100}, 100).over == {1}  # one account: the plain mark
    two = judge({1: 90, 2: 5, None: 10}, 100)  # share 33: only account 1
    assert two.over == {1} and two.refuses(1) and not two.refuses(2) and not two.refuses(None)
    assert judge({1: 60, 2: 50}, 100).over == {1, 2}  # both at or past a share of 50
    full = judge({1: 150, 2: 50}, 100)  # twice the mark: everyone, also an account not counted
    assert full.everyone and full.refuses(3) and full.refuses(None)
    # What the daemon sends an intake worker reads back the same.
    for b in (Backlog(), two, full, judge({None: 200, 7: 10}, 150)):
        assert Backlog.from_wire(b.wire()) == b


async def test_the_count_by_account_adds_the_parts_in_flight(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "q.sqlite", clock=Clock())
    acme = store.accounts.add_account("acme").id
    five = acceptance([f"+4860100{i:04d}" for i in range(5)])
    await accept(store, dataclasses.replace(five, account_id=acme))
    await accept(store, acceptance(["+48601999999"], parts=2))  # no account
    store.queue.claim_due(2)
    assert waiting_by_account(store.db.conn) == {acme: 5, None: 2}
    store.close()
