"""Whether an MO is the SMSC delivering an earlier copy again (`MoRepo.redelivery_of`) is asked on the
event loop's thread for every MO. It read every MO of the phone's last day to compare the texts: with
15,000 from one phone 19 ms a lookup, asked twice an MO, and an MO flood from one number stalled the
daemon (its health check and SMTP answered after seconds). It now reads the phone's texts and CIMD2
stamps by their indexes (migration 63), and is asked once an MO.

On a real SQLite file: the work of a lookup is counted in SQLite's virtual machine steps (a progress
handler), which no load on the machine changes; and through the daemon, with the built-in simulator,
the lookups an answer costs."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.store.db import Store
from gateway.store.redelivery import RedeliveryRepo
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_store import Clock, vm_steps
from tests.test_two_way import two_way_config

PHONE, NUMBER = "+48601000111", "+48100200300"
FLOOD = 15_000
STEPS = 300  # VM steps a lookup may take, whatever the phone sent: some 40-80 (it took 100,000 and more)


def flood(store: Store, *, identical: bool, stamped: bool) -> list[int]:
    """FLOOD MOs from one phone within the hour (their acknowledgements long confirmed), beside one each
    from 5,000 other phones; the ids of the phone's."""
    conn, now = store.db.conn, store.clock()
    rows = [
        (f"+4860{2000000 + i:07d}", f"hello {i}", now - 3000 + i * 0.1, f"o{i:011d}") for i in range(5000)
    ]
    rows += [
        (PHONE, "ALARM" if identical else f"mo {i}", now - 2000 + i * 0.1, f"s{i:011d}" if stamped else None)
        for i in range(FLOOD)
    ]
    with store.db.transaction():
        conn.executemany(
            "INSERT INTO mo (link, source, destination, text, state, received_at, smsc_time, acked_at)"
            f" VALUES ('main', ?, '{NUMBER}', ?, 'mailed', ?, ?, 0)",
            rows,
        )
    conn.execute("ANALYZE")  # the planner with figures, as `PRAGMA optimize` leaves it in use
    return [r[0] for r in conn.execute("SELECT id FROM mo WHERE source = ? ORDER BY id", (PHONE,))]


def steps(conn: sqlite3.Connection, lookup: Callable[[], int | None]) -> tuple[int | None, int]:
    count, found = vm_steps(conn, lookup, every=1)
    return found, count


@pytest.mark.parametrize("identical", [False, True], ids=["texts", "one-word"])
@pytest.mark.parametrize("stamped", [False, True], ids=["smpp", "cimd2-stamped"])
def test_a_lookup_reads_a_few_rows_whatever_one_phone_sent(
    tmp_path: Path, identical: bool, stamped: bool
) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    try:
        ids = flood(store, identical=identical, stamped=stamped)
        text = "ALARM" if identical else "a new text"
        stamp = "n00000000001" if stamped else None
        mo_id = store.mo.record_mo("main", PHONE, NUMBER, text, 0, None, smsc_time=stamp)
        assert mo_id is not None
        earlier, cost = steps(store.db.conn, lambda: store.mo.redelivery_of(mo_id))
        assert cost < STEPS, cost
        # Its verdict as before: a new text, or one stamped anew, is a new SMS; the same word with no
        # stamp, its last copy's acknowledgement confirmed long before, is a new one too.
        assert earlier is None
        copies = [ids[-1], mo_id] if identical else [ids[-1]]  # the phone's of the text last below, in order
        # The SMSC's copy of an SMS 10,000 MOs back whose acknowledgement it missed, by its stamp,
        # behind a flood of its text (one whose acknowledgement it read it delivers no more).
        if stamped:
            old = ids[FLOOD - 10_000]
            store.db.conn.execute("UPDATE mo SET acked_at = NULL WHERE id = ?", (old,))
            again = store.mo.record_mo(
                "main", PHONE, NUMBER, "ALARM" if identical else f"mo {FLOOD - 10_000}", 0, None,
                smsc_time=f"s{FLOOD - 10_000:011d}",
            )  # fmt: skip
            assert again is not None
            found, cost = steps(store.db.conn, lambda: store.mo.redelivery_of(again))
            assert (found, cost < STEPS) == (old, True), (found, cost)
            copies += [again] if identical else []
        # Unconfirmed, the last copy of that text is what a copy delivered again repeats.
        store.db.conn.execute("UPDATE mo SET acked_at = NULL WHERE id = ?", (copies[-1],))
        last = store.mo.record_mo("main", PHONE, NUMBER, "ALARM" if identical else f"mo {FLOOD - 1}", 0, None)
        assert last is not None
        found, cost = steps(store.db.conn, lambda: store.mo.redelivery_of(last))
        assert (found, cost < STEPS) == (copies[-1], True), (found, cost)
    finally:
        store.close()


def test_a_phones_word_sent_only_days_ago_is_not_read_back_through(tmp_path: Path) -> None:
    """The phone's last copy of a word is older than a day: the lookup takes the newest and stops, not
    reads every older one for one within the day (21,000 of one word: some 130,000 steps)."""
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    try:
        conn, now = store.db.conn, store.clock()
        with store.db.transaction():
            conn.executemany(
                "INSERT INTO mo (link, source, destination, text, state, received_at, acked_at)"
                f" VALUES ('main', '{PHONE}', '{NUMBER}', 'ALARM', 'mailed', ?, 0)",
                [(now - 3 * 86400 + i,) for i in range(FLOOD)],
            )
        mo_id = store.mo.record_mo("main", PHONE, NUMBER, "ALARM", 0, None)
        assert mo_id is not None
        earlier, cost = steps(conn, lambda: store.mo.redelivery_of(mo_id))
        assert (earlier, cost < STEPS) == (None, True), (earlier, cost)
    finally:
        store.close()


def test_the_lookups_go_by_the_phones_texts_and_stamps(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    try:
        flood(store, identical=False, stamped=True)
        mo_id = store.mo.record_mo("main", PHONE, NUMBER, "mo 7", 0, None, smsc_time="n00000000001")
        assert mo_id is not None
        conn = store.db.conn
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        try:
            store.mo.redelivery_of(mo_id)
        finally:
            conn.set_trace_callback(None)
        plans = [
            " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in statements
            if sql.startswith("SELECT") and "WHERE id =" not in sql
        ]
    finally:
        store.close()
    assert len(plans) == 2, plans
    assert plans[0] == "SEARCH mo USING INDEX mo_stamps (source=? AND smsc_time=? AND rowid<?)", plans
    assert plans[1] == "SEARCH mo USING INDEX mo_texts (source=? AND destination=? AND text=? AND rowid<?)", (
        plans
    )


def counted_lookups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The MOs `RedeliveryRepo.redelivery_of` is asked of, from now on, in order."""
    asked: list[int] = []
    lookup = RedeliveryRepo.redelivery_of

    def counted(self: RedeliveryRepo, mo_id: int) -> int | None:
        asked.append(mo_id)
        return lookup(self, mo_id)

    monkeypatch.setattr(RedeliveryRepo, "redelivery_of", counted)
    return asked


async def test_an_answer_is_looked_up_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Through the daemon: the events' handler asked, and the conversations' handler asked again.
    asked = counted_lookups(monkeypatch)
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Is 10:00 fine?"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        answer = {"op": "mo", "reply_to_last": True, "text": "Yes, 10:00"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, answer))["ok"]
        await sink.wait(1)
        assert sink.messages[0][1] == [STAFF]
    assert len(asked) == 1, asked


async def test_a_premium_vote_is_looked_up_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The events' handler asked, and the premium handler, which takes the MO first, asked again.
    from tests.test_premium_bounces import config as premium_loop
    from tests.test_premium_bounces import mailed_vote

    asked = counted_lookups(monkeypatch)
    relay = free_port()
    path, cfg = premium_loop(tmp_path, relay, fallback=True)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        await mailed_vote(gw, path, sink)
    assert len(asked) == 1, asked
