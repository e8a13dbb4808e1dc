"""A /metrics scrape reads the counts' own indexes, never the tables, whatever the number kept.

The counts read every message and part: a scan of both tables, every part's payload with it, 14 s a
scrape with a year of traffic kept (2 M messages), past Prometheus's 10 s timeout, and for as long
the count's snapshot held the WAL checkpoint that the daemon's writes then waited for (an SMTP 250
took 1.9 s). A database that size is too slow for a test; what made it slow is the plan, checked
here on the schema the code creates (fresh and migrated), with the counts against a plain GROUP BY
and the plans of the mail path (SMTP in, SMPP out, delivery report) with and without the indexes.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from billing_reports import mtlate
from gateway.retentionpurge import purge_before
from gateway.store.counted import MO_UNFINISHED
from gateway.store.db import Store
from gateway.web import counts
from gateway.web.app import WebContext
from tests import test_store
from tests.conftest import DOMAIN, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_web_limits import plan, trace_reader
from tests.web_helpers import add_mail
from tests.web_helpers import web as web  # the fixture

# The parts' count reads the index of (link, state, SMSC id) that the receipts are matched by too
# (migration 62; parts_counts (link, state) before it).
COUNTS_INDEXES = {"messages": "messages_counts", "parts": "parts_link_state_smsc"}


def table_scans(lines: list[str]) -> list[str]:
    """The plan's lines that read a table row by row (a subquery's own rows are not a table's)."""
    own = {line.split()[1] for line in lines if line.startswith(("CO-ROUTINE ", "MATERIALIZE "))}
    return [
        line
        for line in lines
        if line.startswith("SCAN ") and line.split()[1] not in own and "USING COVERING INDEX" not in line
    ]


async def test_a_scrapes_counts_read_covering_indexes_not_the_tables(web: WebContext) -> None:
    seen: list[str] = []
    await trace_reader(web, True, seen)
    try:
        await web.counts.read()
    finally:
        await trace_reader(web, False, seen)
    selects = [sql for sql in seen if sql.startswith("SELECT")]
    assert len(selects) == 5, seen
    plans = {sql: plan(web, sql).split(" | ") for sql in selects}
    for sql, lines in plans.items():
        assert table_scans(lines) == [], f"{sql}\n  -> {lines}"
    read = " ".join(" ".join(lines) for lines in plans.values())
    for index in COUNTS_INDEXES.values():
        assert f"USING COVERING INDEX {index}" in read, plans


def test_an_older_database_gains_the_counts_indexes(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite")
    test_store.undo_migration_28(store.db.conn)
    store.db.conn.execute("UPDATE schema_version SET version = 27")
    store.close()
    store = Store.open(tmp_path / "db.sqlite")
    try:
        conn = store.db.conn
        for sql, table in ((counts.MESSAGES, "messages"), (counts.PARTS, "parts")):
            lines = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            assert f"SCAN {table} USING COVERING INDEX {COUNTS_INDEXES[table]}" in lines, lines
            assert table_scans(lines) == [], lines
    finally:
        store.close()


async def test_the_counts_are_those_of_a_plain_group_by(web: WebContext) -> None:
    # A few hundred messages of both accounts and of none ('-'), their parts on two links, on none
    # and on one named '-' (one label with none), in every state.
    store = web.store
    states = ("queued", "active", "submitted", "delivered", "failed", "expired", "hold", "unreported")
    links = (None, "main", "backup", "-")

    def seed() -> None:
        conn = store.db.conn
        ids = [
            add_mail(store, ("acme", "rival")[i % 2], "anna@acme.example", f"+48601{i:06d}", f"text {i}")
            for i in range(300)
        ]
        with store.db.transaction():
            for i, mid in enumerate(ids):
                account = "account_id" if i % 7 else "NULL"
                conn.execute(
                    f"UPDATE messages SET state = ?, account_id = {account} WHERE id = ?",
                    (states[i // 3 % 8], mid),
                )
                conn.execute(
                    "UPDATE parts SET state = ?, link = ? WHERE message_id = ?",
                    (states[i * 3 % 8], links[i // 2 % 4], mid),
                )

    await store.write(seed)
    got = await web.counts.read()
    conn = store.db.conn
    messages = conn.execute(
        "SELECT COALESCE(a.name, '-'), m.state, COUNT(*) FROM messages m"
        " LEFT JOIN accounts a ON a.id = m.account_id GROUP BY 1, 2"
    ).fetchall()
    parts = conn.execute("SELECT COALESCE(link, '-'), state, COUNT(*) FROM parts GROUP BY 1, 2").fetchall()
    assert got.messages == messages
    assert got.parts == parts
    assert sum(n for _a, _s, n in got.messages) == 302  # and the two the panel's store began with
    assert {a for a, _s, _n in got.messages} == {"acme", "rival", "-"}
    assert {link for link, _s, _n in got.parts} == {"main", "backup", "-"}


async def test_the_counts_indexes_change_no_plan_of_the_mail_path_but_its_receipts(tmp_path: Path) -> None:
    # Without statistics SQLite took parts(link, state) to match each delivery report, over
    # parts_smsc (link, smsc_id): every part of the link waiting for its report, read per report.
    # The parts' count now reads the index of (link, state, SMSC id), which the match is meant to
    # take: it is the only plan that index may change, and it reads it by all three.
    seen: list[str] = []
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        gw.store.db.conn.set_trace_callback(seen.append)
        try:
            await gw.send(mail([f"60112345{i}@{DOMAIN}" for i in range(3)], "Meeting moved to 10:00"))
            await gw.send(mail(f"601123459@{DOMAIN}", "alpha beta gamma " * 20))  # three parts
            await gw.until(lambda: gw.states() == ["delivered"] * 4)
        finally:
            gw.store.db.conn.set_trace_callback(None)
        db = gw.config.db_path
    statements = {
        sql
        for sql in seen
        if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "DELETE", "WITH"))
    }
    matches = [sql for sql in statements if sql.startswith("UPDATE parts") and "smsc_id = " in sql]
    assert matches, statements  # a delivery report's match is among them
    # Not cached: an EXPLAIN prepared before the DROP INDEX would still show the index.
    with closing(sqlite3.connect(db, isolation_level=None, cached_statements=0)) as conn:

        def plans() -> dict[str, list[str]]:
            found = {}
            for sql in statements:
                try:
                    found[sql] = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
                except sqlite3.OperationalError:  # a bound infinity, expanded into the text as Inf
                    assert "Inf" in sql, sql
            return found

        with_indexes = plans()
        conn.execute("BEGIN")
        for index in COUNTS_INDEXES.values():
            conn.execute(f"DROP INDEX {index}")
        without = plans()
        conn.execute("ROLLBACK")
    assert len(with_indexes) > 20, with_indexes
    changed = {sql: (without[sql], now) for sql, now in with_indexes.items() if without[sql] != now}
    receipts = [sql for sql in changed if sql.startswith("SELECT p.id") and "p.smsc_id = " in sql]
    assert len(receipts) == 6 and set(receipts) == set(changed), changed  # one per part
    for sql in receipts:
        by_index = "SEARCH p USING INDEX parts_link_state_smsc (link=? AND state=? AND smsc_id=?)"
        assert with_indexes[sql][0] == by_index, with_indexes[sql]


async def test_the_counters_do_not_fall_when_the_purge_deletes_old_rows(tmp_path: Path) -> None:
    # The counts were of the rows kept: each night's purge made them fall, which Prometheus reads
    # as a counter reset, and `rate()` as every SMS ever counted failing or arriving at once.
    from tests.test_purge_scale import CUTOFF, WINDOW, seed

    store = Store.open(tmp_path / "db.sqlite")
    try:
        conn = store.db.conn
        seed(conn, 20)
        conn.execute("UPDATE parts SET link = 'main', state = 'failed' WHERE id % 2 = 0")
        conn.execute("UPDATE mo SET state = 'mailed' WHERE id % 3 = 0")
        before = counts.count(conn)
        kept = conn.execute("SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM mo)").fetchone()
        await purge_before(store, CUTOFF, chunk=2, reply_window=WINDOW)
        after = counts.count(conn)
        left = conn.execute("SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM mo)").fetchone()
    finally:
        store.close()
    assert left[0] < kept[0] and left[1] < kept[1]  # the purge did delete messages and MOs
    assert sorted(after.messages) == sorted(before.messages)
    assert sorted(after.parts) == sorted(before.parts)

    # An MO not handled yet is a gauge's (`smsgw_mo_waiting`): once purged it waits no more.
    def counted(mo: list[tuple[str, int]]) -> list[tuple[str, int]]:
        return [m for m in mo if m[0] not in MO_UNFINISHED]

    assert counted(after.mo) == counted(before.mo)
    assert dict(after.mo)["new"] < dict(before.mo)["new"]


async def test_states_a_row_leaves_again_are_gauges_and_the_counters_only_final_states(
    web: WebContext,
) -> None:
    # `smsgw_messages_total{state="queued"}` fell each time the queue drained: a counter reset to
    # Prometheus, so `sum(rate(smsgw_messages_total[5m]))` jumped by the queue's size.
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from gateway.web.metrics import StoreCollector

    store = web.store

    def seed() -> None:
        ids = [add_mail(store, "acme", "anna@acme.example", f"+48601{i:06d}", f"t {i}") for i in range(4)]
        with store.db.transaction():
            for mid, state in zip(ids, ("queued", "delivered", "failed", "hold"), strict=True):
                store.db.conn.execute("UPDATE messages SET state = ? WHERE id = ?", (state, mid))
                store.db.conn.execute(
                    "UPDATE parts SET state = ?, link = 'main' WHERE message_id = ?", (state, mid)
                )
            store.db.conn.execute(
                "INSERT INTO mo (link, source, destination, text, received_at, state)"
                " VALUES ('main', '+48601', '+48100', 'x', 0, 'segment'),"
                " ('main', '+48601', '+48100', 'y', 0, 'mailed')"
            )

    await store.write(seed)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(web, await web.counts.read()))
    kinds = {f.name: (f.type, {s.labels.get("state") for s in f.samples}) for f in
             text_string_to_metric_families(generate_latest(registry).decode())}  # fmt: skip
    assert kinds["smsgw_messages"][0] == "counter"
    assert {"delivered", "failed"} <= kinds["smsgw_messages"][1]
    assert not {"queued", "hold"} & kinds["smsgw_messages"][1]
    assert (
        kinds["smsgw_messages_waiting"][0] == "gauge"
        and {"queued", "hold"} <= kinds["smsgw_messages_waiting"][1]
    )
    assert {"delivered", "failed"} <= kinds["smsgw_parts"][1]
    assert not {"queued", "hold"} & kinds["smsgw_parts"][1]
    assert (
        kinds["smsgw_parts_waiting"][0] == "gauge" and {"queued", "hold"} <= kinds["smsgw_parts_waiting"][1]
    )
    assert kinds["smsgw_mo_waiting"][1] == {"segment"}
    mo = {s.labels["outcome"] for s in next(f for f in text_string_to_metric_families(
        generate_latest(registry).decode()) if f.name == "smsgw_mo").samples}  # fmt: skip
    assert "mailed" in mo and "segment" not in mo


async def test_a_retried_sms_stays_counted_in_the_final_state_it_left(web: WebContext) -> None:
    # `smsgw queue retry` of a failed SMS moved it back to queued: `smsgw_messages_total{state=
    # "failed"}` and the parts' counter fell, a counter reset to Prometheus.
    store = web.store

    def seed() -> int:
        mid = add_mail(store, "acme", "anna@acme.example", "+48601000001", "retried")
        with store.db.transaction():
            store.db.conn.execute("UPDATE messages SET state = 'failed' WHERE id = ?", (mid,))
            store.db.conn.execute(
                "UPDATE parts SET state = 'failed', link = 'main' WHERE message_id = ?", (mid,)
            )
        return mid

    mid = await store.write(seed)
    before = counts.count(store.db.conn)
    assert await store.write(lambda: store.admin.retry_message(mid, before_reset=mtlate.retried)) == 1
    after = counts.count(store.db.conn)
    # Kept as the retry's snapshot ("retried:failed"): /metrics counts it as failed, not as accepted.
    assert ("acme", "failed", 1) in before.messages and ("acme", "retried:failed", 1) in after.messages
    assert ("main", "failed", 1) in before.parts and ("main", "failed", 1) in after.parts
    assert ("acme", "queued", 2) in after.messages  # a gauge's state now (with the seeded one)


async def test_a_purged_sms_part_still_awaiting_its_report_is_not_kept_as_waiting(tmp_path: Path) -> None:
    # A long SMS fails whole when one part fails, while another may still await its report: the
    # purge deleted it with the rest, and kept its count as 'submitted', a waiting state, so
    # `smsgw_parts_waiting{state="submitted"}` stayed one too high for good.
    from tests.test_purge_scale import CUTOFF, WINDOW, seed

    store = Store.open(tmp_path / "db.sqlite")
    try:
        conn = store.db.conn
        seed(conn, 3)
        conn.execute("UPDATE messages SET state = 'failed' WHERE state = 'delivered'")
        conn.execute(
            "UPDATE parts SET link = 'main', state = CASE WHEN id % 2 = 0 THEN 'failed' ELSE 'submitted' END"
            " WHERE message_id IN (SELECT id FROM messages WHERE state = 'failed')"
        )
        await purge_before(store, CUTOFF, chunk=2, reply_window=WINDOW)
        after = dict(((link, state), n) for link, state, n in counts.count(conn).parts)
        (left,) = conn.execute("SELECT COUNT(*) FROM parts WHERE state = 'submitted'").fetchone()
        (purged,) = conn.execute("SELECT COUNT(*) FROM purged_counts WHERE metric = 'parts'").fetchone()
    finally:
        store.close()
    assert purged > 0  # the purge did delete parts and kept what they counted
    assert after.get(("main", "submitted"), 0) == left
    assert after.get(("main", "failed"), 0) > 0


async def test_a_purged_mo_part_never_joined_is_not_kept_as_waiting(tmp_path: Path) -> None:
    # A part of a long MO whose rest never came, older than the retention, was purged and kept as
    # counted 'segment': `smsgw_mo_waiting{state="segment"}` stayed one too high for good.
    from tests.test_purge_scale import CUTOFF, WINDOW, seed

    store = Store.open(tmp_path / "db.sqlite")
    try:
        conn = store.db.conn
        seed(conn, 3)
        conn.execute("UPDATE mo SET state = CASE WHEN id % 2 = 0 THEN 'segment' ELSE 'mailed' END")
        await purge_before(store, CUTOFF, chunk=2, reply_window=WINDOW)
        after = dict(counts.count(conn).mo)
        (left,) = conn.execute("SELECT COUNT(*) FROM mo WHERE state = 'segment'").fetchone()
        (gone,) = conn.execute("SELECT COUNT(*) FROM purged_counts WHERE metric = 'mo'").fetchone()
    finally:
        store.close()
    assert gone > 0  # the purge did delete MOs and kept what they counted
    assert after.get("segment", 0) == left
    assert after.get("mailed", 0) > 0


async def test_waiting_states_an_older_purge_kept_counted_are_in_no_gauge(web: WebContext) -> None:
    # An older purge kept a part awaiting its report as counted 'submitted' and an MO part never
    # joined as 'segment': in a database it purged, the gauges stayed that much too high for good.
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from gateway.web.metrics import StoreCollector

    def older_purge() -> None:
        web.store.db.conn.execute(
            "INSERT INTO purged_counts (metric, label, state, n) VALUES ('parts', 'main', 'submitted', 3),"
            " ('parts', 'main', 'delivered', 5), ('mo', '', 'segment', 2), ('mo', '', 'new', 1),"
            " ('mo', '', 'mailed', 4)"
        )

    await web.store.write(older_purge)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(web, await web.counts.read()))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
    }
    conn = web.store.db.conn

    def rows(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    part = "SELECT COUNT(*) FROM parts WHERE link = 'main' AND state = "
    waiting = samples.get(("smsgw_parts_waiting", (("link", "main"), ("state", "submitted"))), 0)
    assert waiting == rows(part + "'submitted'")  # was 3 more
    assert samples[("smsgw_parts_total", (("link", "main"), ("state", "delivered")))] == 5 + rows(
        part + "'delivered'"
    )
    for state in ("segment", "new"):  # 2 and 1 more
        mo = rows(f"SELECT COUNT(*) FROM mo WHERE state = '{state}'")
        assert samples.get(("smsgw_mo_waiting", (("state", state),)), 0) == mo, state
    assert samples[("smsgw_mo_total", (("outcome", "mailed"),))] == 4 + rows(
        "SELECT COUNT(*) FROM mo WHERE state = 'mailed'"
    )
