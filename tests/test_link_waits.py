"""SMS whose route's links are down wait unclaimed for one to come up (`gateway.linkwaits`).

They were claimed and put back every second for as long as the link stayed down (a write a second,
the whole waiting queue walked through again and again). A real daemon against the simulator's SMPP
server over TCP: the prefix link "main" (+4860, exclusive) has nothing listening on its port (its binds
are refused), the default link "backup" is up; a real SQLite file, whose statements are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from gateway import linkwaits
from gateway.config import Config, load_config
from gateway.linkwaits import PARKED
from gateway.smtp.accept import accept
from gateway.store.clockstep import extend_validities
from gateway.store.db import Store
from gateway.store.partnotes import NO_LINK_EXPIRED, NO_LINK_UP
from gateway.store.queueage import queue_oldest
from gateway.store.records import ClaimedPart
from smsc.base import LinkState
from tests.conftest import DOMAIN, Running, config_text, free_port, mail, running_gateway, smsc_link
from tests.fakes.smsc import HappySMSC, ThrottlingSMSC
from tests.test_process import smsgw
from tests.test_store import Clock, acceptance

N = 12


def two_links(tmp_path: Path, port_main: int, port_other: int, other: str = "", main: str = "") -> Config:
    """main (+4860, exclusive unless `main` says otherwise) and the link "backup" (`other`: its keys)."""
    text = config_text(
        tmp_path, smsc_port=port_main, smsc_extra=main or 'prefixes = ["+4860"]\nexclusive = true'
    )
    text += smsc_link("backup", port_other, other or "max_per_second = 1000")
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o640)
    return load_config(path)


async def queue_for_main(gw: Running, n: int = N) -> None:
    rcpts = [f"60{i:07d}@{DOMAIN}" for i in range(n)]
    res = await gw.send(mail(rcpts, "The plant is closed today"), rcpts)
    assert res.error is None and not res.refused


async def delivered_then_waiting_for_main(gw: Running) -> None:
    """One SMS for main delivered with both links up, then put back to wait for main to come up: the
    state no link coming up would ever move, so whatever sends it again is the look under test."""
    await gw.until(lambda: up(gw, "backup")() and up(gw, "main")())
    await queue_for_main(gw, 1)
    await gw.until(lambda: gw.states() == ["delivered"])

    def waits_for_main() -> None:
        conn, now = gw.store.db.conn, gw.store.clock()
        conn.execute(
            "UPDATE parts SET state = 'deferred', next_attempt_at = ?1, expires_at = ?1, error = ?2,"
            " smsc_id = NULL, link = NULL",
            (now + 3600, NO_LINK_UP),
        )
        conn.execute("UPDATE messages SET state = 'queued', finished_at = NULL")

    await gw.store.write(waits_for_main)


def count(gw: Running, where: str) -> int:
    return int(gw.store.db.conn.execute(f"SELECT COUNT(*) FROM parts WHERE {where}").fetchone()[0])


def claim_times(gw: Running) -> list[tuple[int, float]]:
    return [tuple(row) for row in gw.store.db.conn.execute("SELECT id, claimed_at FROM parts ORDER BY id")]


def up(gw: Running, name: str) -> Callable[[], bool]:
    return lambda: gw.daemon.dispatcher.links[name].state == LinkState.ACTIVE


def counting(conn: sqlite3.Connection, shape: str) -> list[str]:
    """The statements run on `conn` from now on that contain `shape`."""
    seen: list[str] = []
    conn.set_trace_callback(lambda sql: seen.append(sql) if shape in sql else None)
    return seen


async def test_parts_wait_unclaimed_while_their_link_is_down_and_go_once_it_is_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(linkwaits, "UNPARK_ROWS", 5)  # made due over three claims when main comes up
    port_main = free_port()  # nothing listens: main's binds are refused
    async with HappySMSC() as backup:
        async with running_gateway(two_links(tmp_path, port_main, backup.port)) as gw:
            await gw.until(up(gw, "backup"))
            await queue_for_main(gw)
            await gw.until(lambda: count(gw, PARKED) == N)
            assert count(gw, f"error = '{NO_LINK_UP}'") == N  # `queue show` says why they wait
            oldest = gw.store.db.conn.execute("SELECT MIN(created_at) FROM messages").fetchone()[0]
            assert queue_oldest(gw.store.db.conn, gw.store.clock()) == oldest  # status's queue age
            first = gw.store.db.conn.execute("SELECT MIN(id) FROM messages").fetchone()[0]
            shown = await asyncio.to_thread(smsgw, tmp_path / "config.toml", "queue", "show", str(first))
            waiting = [line for line in shown.stdout.splitlines() if line.startswith("  waiting: ")]
            said = "  waiting: next try when a link for it comes up (its validity ends "
            assert len(waiting) == N and all(line.startswith(said) for line in waiting), shown.stdout
            assert "no link up for +48600000000 (link main " in waiting[0], waiting
            claims = counting(gw.store.db.conn, "SET state = 'active'")
            waited = 0
            while waited < 3:  # some dispatcher looks, each second
                await asyncio.sleep(0.5)
                waited += 0.5
            gw.store.db.conn.set_trace_callback(None)
            assert claims == []  # none claimed again: before, each second
            assert count(gw, PARKED) == N and count(gw, "attempts = 0") == N
            assert backup.received == []
            async with HappySMSC(port=port_main) as main:
                await main.wait_for(N, timeout=20)
                await gw.until(lambda: gw.states() == ["delivered"] * N)
                assert sorted(s.destination for s in main.received) == [f"+4860{i:07d}" for i in range(N)]
            assert backup.received == []


async def test_parts_waiting_for_a_link_stay_waiting_across_a_restart_and_go_once(tmp_path: Path) -> None:
    port_main = free_port()
    async with HappySMSC() as backup:
        cfg = two_links(tmp_path, port_main, backup.port)
        async with running_gateway(cfg) as gw:
            await gw.until(up(gw, "backup"))
            await queue_for_main(gw)
            await gw.until(lambda: count(gw, PARKED) == N)
            claimed = claim_times(gw)
        async with running_gateway(cfg) as gw:  # main still down
            await gw.until(up(gw, "backup"))
            await asyncio.sleep(1.5)  # some dispatcher looks, each second
            # Found waiting again and none claimed (each claim stamps its time): a part claimed and put
            # back is waiting at almost any instant.
            assert claim_times(gw) == claimed
            assert count(gw, PARKED) == N and backup.received == []
            async with HappySMSC(port=port_main) as main:
                await main.wait_for(N, timeout=20)
                await gw.until(lambda: gw.states() == ["delivered"] * N)
                assert len({s.destination for s in main.received}) == len(main.received) == N
    assert backup.received == []


async def test_parts_waiting_for_a_link_whose_route_is_removed_fail_at_once_after_the_restart(
    tmp_path: Path,
) -> None:
    # Restarted with no link for +4860 configured, they waited for a link that never comes, said so by
    # `queue show`, and bounced a day later as if their link had been down.
    port_main = free_port()
    async with HappySMSC() as backup:
        async with running_gateway(two_links(tmp_path, port_main, backup.port)) as gw:
            await gw.until(up(gw, "backup"))
            await queue_for_main(gw)
            await gw.until(lambda: count(gw, PARKED) == N)
        elsewhere = 'prefixes = ["+4870"]'
        cfg = two_links(
            tmp_path, port_main, backup.port, other=f"{elsewhere}\nmax_per_second = 1000", main=elsewhere
        )
        async with running_gateway(cfg) as gw:
            await gw.until(lambda: gw.states() == ["failed"] * N, timeout=20)
            assert count(gw, "error LIKE 'no SMSC link serves%'") == N
    assert backup.received == []


async def test_a_part_waiting_for_a_link_that_went_down_and_up_between_two_looks_goes(tmp_path: Path) -> None:
    # The dispatcher compared the links up at two looks: the same, so a part no link up could take in
    # between (put to wait by a submit's answer on another link, say) waited for its link with it up.
    async with HappySMSC() as main, HappySMSC() as backup:
        async with running_gateway(two_links(tmp_path, main.port, backup.port)) as gw:
            await delivered_then_waiting_for_main(gw)  # as a part put to wait while main was down is left
            main.drop_all()  # and main comes up again at once, before the dispatcher looks (each second)
            await gw.until(lambda: not up(gw, "main")())
            await main.wait_for(2, timeout=10)
            await gw.until(lambda: gw.states() == ["delivered"])
    assert backup.received == []


async def test_a_route_with_one_of_two_links_down_goes_by_the_other_at_once(tmp_path: Path) -> None:
    # main and backup both serve +4860; main is down: every SMS goes by backup, none waits.
    extra = 'prefixes = ["+4860"]\nmax_per_second = 1000'
    async with HappySMSC() as backup:
        cfg = two_links(tmp_path, free_port(), backup.port, other=extra, main='prefixes = ["+4860"]')
        async with running_gateway(cfg) as gw:
            await gw.until(up(gw, "backup"))
            await queue_for_main(gw)
            await backup.wait_for(N, timeout=20)
            await gw.until(lambda: gw.states() == ["delivered"] * N)
            assert count(gw, f"error = '{NO_LINK_UP}'") == 0


async def test_a_throttling_link_is_up_its_parts_do_not_wait_for_a_link(tmp_path: Path) -> None:
    # main binds and answers ESME_RTHROTTLED past 4 a second: its parts are throttled, never parked.
    async with ThrottlingSMSC(accept_per_second=4) as main, HappySMSC() as backup:
        async with running_gateway(two_links(tmp_path, main.port, backup.port)) as gw:
            await gw.until(lambda: up(gw, "backup")() and up(gw, "main")())
            parked = counting(gw.store.db.conn, "next_attempt_at = expires_at,")
            await queue_for_main(gw)
            await gw.until(lambda: gw.states() == ["delivered"] * N, timeout=30)
            gw.store.db.conn.set_trace_callback(None)
            assert main.throttled > 0 and parked == [] and backup.received == []


class Parked(NamedTuple):
    clock: Clock
    store: Store
    part: ClaimedPart
    account_id: int | None


@contextlib.asynccontextmanager
async def one_parked(tmp_path: Path, account: str = "") -> AsyncIterator[Parked]:
    """One SMS to +48601123456 (the named account's, if any) claimed and parked waiting for a link,
    in a real SQLite file on an injected clock, closed after."""
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    try:
        sms = acceptance(["+48601123456"])
        account_id = store.accounts.add_account(account).id if account else None
        if account_id is not None:
            sms.account_id = account_id
        await accept(store, sms)
        (part,) = store.queue.claim_due(10)
        with store.queue.transaction():
            store.queue.release(part.id, delay=None, refusal=NO_LINK_UP, at_expiry=True)
        yield Parked(clock, store, part, account_id)
    finally:
        store.db.close()


async def test_a_part_waiting_for_a_link_expires_at_its_validity_saying_no_link_up(
    tmp_path: Path,
) -> None:
    async with one_parked(tmp_path) as (clock, store, part, _):
        clock.t = part.expires_at - 1
        assert store.queue.claim_due(10) == []  # not due before its validity ends
        assert store.queue.expire_due() == []
        clock.t = part.expires_at
        (finished,) = store.queue.expire_due()
        row = store.db.conn.execute("SELECT state, error FROM parts WHERE id = ?", (part.id,)).fetchone()
        assert tuple(row) == ("expired", NO_LINK_EXPIRED)
        assert finished.state == "expired"


async def test_a_part_held_by_a_suspension_while_it_waited_for_a_link_is_due_at_the_resume(
    tmp_path: Path,
) -> None:
    # Resumed as `queued` with its next attempt at its validity's end, it passed for a quiet-hours hold
    # and waited for its end, never claimed, with its link up.
    async with one_parked(tmp_path, "acme") as (clock, store, part, account_id):
        assert store.policy.suspend_account(account_id, "unpaid") == 1
        clock.t += 60
        assert store.policy.resume_account(account_id) == 1
        assert [p.id for p in store.queue.claim_due(10)] == [part.id]


async def test_a_part_waiting_for_a_link_is_found_when_it_comes_up_after_a_step_forward(
    tmp_path: Path,
) -> None:
    # The clock check moved its validity by a step forward that did not pass and left its next attempt:
    # no longer due at its validity's end, it was not found when its link came up, and waited out its
    # old validity (up to a day) with its link up.
    async with one_parked(tmp_path) as (clock, store, part, _):
        clock.t += 600  # NTP steps the clock forward 10 minutes during the outage
        first = part.message_id + 1
        with store.queue.transaction():
            assert extend_validities(store.db.conn, 600, first, clock.t) == 1
        row = store.db.conn.execute("SELECT next_attempt_at, expires_at FROM parts").fetchone()
        assert tuple(row) == (part.expires_at + 600, part.expires_at + 600)
        with store.queue.transaction():  # a link comes up: the walk from the start (`Unparking`)
            assert linkwaits.unpark(store.db.conn, lambda _to, _via: True, clock.t, (clock.t, 0), 10) == (
                1,
                None,
            )
        assert [p.id for p in store.queue.claim_due(10)] == [part.id]


async def test_a_part_a_suspension_holds_while_it_waits_for_a_link_keeps_its_validity_through_quiet_hours(
    tmp_path: Path,
) -> None:
    # Held due at its validity's end and never tried, it passed for a quiet-hours hold: a new window
    # (now outside it) released it due now with its validity ending now, and the next sweep expired it.
    async with one_parked(tmp_path, "acme") as (clock, store, part, account_id):
        assert store.policy.suspend_account(account_id, "unpaid") == 1
        clock.t += 60
        store.accounts.update_account("acme", quiet_start="03:00", quiet_end="04:00")
        clock.t += 1
        assert store.queue.expire_due() == []
        ends = store.db.conn.execute("SELECT expires_at FROM parts").fetchone()[0]
        assert ends == part.expires_at
        assert store.policy.resume_account(account_id) == 1
        assert [p.id for p in store.queue.claim_due(10)] == [part.id]
