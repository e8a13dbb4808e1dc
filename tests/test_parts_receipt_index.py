"""Migration 62: one index of a part's link, state and SMSC id (parts_link_state_smsc) in place of
parts_smsc (link, smsc_id) and parts_counts (link, state) WHERE id > 0.

Both changed at steps of every part's life; every receipt lookup by SMSC id names the part's state
too, and the /metrics counts read the link and state. The plans are what matters here, checked on
real SQLite files as the daemon opens them: each statement that looks a part up by its SMSC id goes
by (link, state, id), never through every part of the link (looked up by the link and id alone on
this index, a receipt for a part already final read all of them, 0.1 s at a million kept) and never
through every part awaiting its report (the plan of a receipt coming by a link with another bind, or
a former name, on parts_smsc).
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path

from gateway.smtp.accept import accept
from gateway.store.db import Store
from gateway.store.schema import SCHEMA_VERSION
from gateway.web import counts
from smsc.base import ReportStatus
from tests.conftest import DOMAIN, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_store import Clock, acceptance, undo_migration_62

INDEX = "parts_link_state_smsc"
# A part's SMSC id compared with a receipt's: `p.smsc_id = ?`, a CIMD2 key's range, not `d.smsc_id`.
BY_ID = re.compile(r"(?<![\w.])(?:p\.)?smsc_id (?:=|>=) ")


def receipt_lookups(statements: list[str]) -> list[str]:
    """The statements that read parts by their SMSC id (not those that write it, nor a receipt's own)."""
    return sorted({sql for sql in statements if sql.startswith(("SELECT", "WITH")) and "FROM parts" in sql
                   and BY_ID.search(sql)})  # fmt: skip


def plans(db: Path, statements: list[str]) -> dict[str, list[str]]:
    # Not cached: a statement prepared on the daemon's connection keeps the plan it was given.
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, cached_statements=0)) as conn:
        return {sql: [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")] for sql in statements}


def by_link_state_and_id(plan: list[str]) -> bool:
    """Parts read only off the index, the row (the last step) by (link, state, id): the steps before
    it in a recursive lookup are the states of the link, one each."""
    parts = [line for line in plan if line.split()[1:2] in (["p"], ["parts"])]
    return (
        bool(parts)
        and all(line.startswith("SEARCH ") and f"INDEX {INDEX} (link=?" in line for line in parts)
        and f"INDEX {INDEX} (link=? AND state=? AND smsc_id" in parts[-1]
    )


async def test_every_receipt_lookup_of_a_running_gateway_goes_by_link_state_and_id(tmp_path: Path) -> None:
    # The simulator over SMPP: reports as the SMS are delivered, then an intermediate report
    # (ENROUTE) for an SMS already delivered, which only notes the receipt against its part.
    seen: list[str] = []
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        conn = gw.store.db.conn
        conn.set_trace_callback(seen.append)
        try:
            await gw.send(mail([f"60112345{i}@{DOMAIN}" for i in range(3)], "Meeting moved to 10:00"))
            await gw.send(mail(f"601123459@{DOMAIN}", "alpha beta gamma " * 20))  # three parts
            await gw.until(lambda: gw.states() == ["delivered"] * 4)
            first = conn.execute("SELECT id, smsc_id FROM parts ORDER BY id LIMIT 1").fetchone()
            assert await smsc.inject_report(first[1], ReportStatus.PENDING)
            noted = "SELECT COUNT(*) FROM dlrs WHERE part_id = ?"
            await gw.until(lambda: conn.execute(noted, (first[0],)).fetchone()[0] == 2)
        finally:
            conn.set_trace_callback(None)
        assert conn.execute("SELECT state FROM parts WHERE id = ?", (first[0],)).fetchone() == ("delivered",)
        db = gw.config.db_path
    lookups = plans(db, receipt_lookups(seen))
    for sql, plan in lookups.items():
        assert by_link_state_and_id(plan), f"{sql}\n  -> {plan}"
        # Sorted in a temporary b-tree: only the candidates of a pending receipt, as on parts_smsc.
        assert "TEMP B-TREE" not in " ".join(plan) or "ORDER BY m.recipient IS" in sql, plan
    assert len(lookups) >= 7, lookups  # a delivery report's match for each of the six parts, and
    assert any(sql.startswith("WITH RECURSIVE") for sql in lookups), lookups  # the late receipt's


async def test_receipts_of_binds_former_names_and_cimd2_keys_go_by_link_state_and_id(tmp_path: Path) -> None:
    # A link with another bind to the same SMSC account and a former name: on parts_smsc SQLite took
    # parts_due for `link IN (…)`, every part awaiting a report read at each receipt. A CIMD2 key
    # read for its number goes by a range of ids; an unmatched receipt asks the other links.
    store = Store.open(tmp_path / "smsgw.db", clock=Clock())
    q = store.queue
    q.siblings = {"plus": ("plus2",), "plus2": ("plus",)}
    q.gone_links = ("oldname",)
    q.link_names = {"plus": "smpp", "plus2": "smpp", "tmo": "smpp"}
    try:
        await accept(store, acceptance([f"+4860112345{n}" for n in range(6)]))
        parts = q.claim_due(10)
        key = "2612060000"
        ids = ["a1", "a2", "a3", f"{key}:48601123453", f"{key}:48601123454", "a6"]
        links = ["plus", "plus2", "plus", "tmo", "tmo", "plus"]
        for part, link, smsc_id in zip(parts, links, ids, strict=True):
            q.mark_submitted(part.id, link, smsc_id, part.message_id)
        seen: list[str] = []
        store.db.conn.set_trace_callback(seen.append)
        q.record_report("plus", "a1", "delivered", None, "r", phone="+48601123450")
        q.record_report("plus", "a2", "failed", "UNDELIV", "r")
        q.record_report("plus", "a3", "pending", None, "r")
        q.record_report("plus", "a1", "pending", None, "r")  # its part delivered already
        q.record_report("plus", "a1", "delivered", None, "r")  # a repeat
        q.record_report("tmo", f"{key}:0601123453", "delivered", None, "r")  # the number as written
        q.record_report("tmo", f"{key}:0601123454", "pending", None, "r")
        q.record_report("tmo", f"{key}:0601123453", "pending", None, "r")  # delivered already
        q.record_report("tmo", "ffff", "delivered", None, "r")  # matches nothing: the hints ask
        store.db.conn.set_trace_callback(None)
        matched = "SELECT part_id FROM dlrs ORDER BY id"
        assert [r[0] for r in store.db.conn.execute(matched)] == [
            parts[0].id, parts[1].id, parts[2].id, parts[0].id, parts[0].id, parts[3].id, parts[4].id,
            parts[3].id, None,
        ]  # fmt: skip
        db = store.path
    finally:
        store.close()
    lookups = plans(db, receipt_lookups(seen))
    for sql, plan in lookups.items():
        assert by_link_state_and_id(plan), f"{sql}\n  -> {plan}"
    assert len(lookups) >= 10, lookups
    assert sum(sql.startswith("WITH RECURSIVE") for sql in lookups) == 2, lookups


async def test_an_upgraded_database_trades_both_indexes_for_the_one_and_counts_alike(tmp_path: Path) -> None:
    path = tmp_path / "smsgw.db"
    store = Store.open(path, clock=Clock())
    await accept(store, acceptance([f"+4860112345{n}" for n in range(4)], parts=2))
    for n, part in enumerate(store.queue.claim_due(10)):
        store.queue.mark_submitted(part.id, ("plus", "orange")[n % 2], f"id{n}", part.message_id)
    store.queue.record_report("plus", "id0", "delivered", None, "r")
    store.queue.record_report("orange", "id1", "failed", "UNDELIV", "r")
    conn = store.db.conn
    undo_migration_62(conn)
    conn.execute("UPDATE schema_version SET version = 61")
    before = counts.count(conn)
    store.close()
    store = Store.open(path, clock=Clock())
    try:
        conn = store.db.conn
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'parts'")}
        assert INDEX in indexes and not {"parts_smsc", "parts_counts"} & indexes, indexes
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        (parts_plan,) = [
            row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {counts.PARTS}") if " parts " in f"{row[3]} "
        ]
        assert parts_plan == f"SCAN parts USING COVERING INDEX {INDEX}", parts_plan
        assert counts.count(conn) == before
        store.queue.record_report("plus", "id2", "delivered", None, "r")
        assert conn.execute("SELECT part_id IS NOT NULL FROM dlrs ORDER BY id DESC").fetchone() == (1,)
    finally:
        store.close()
