"""The statements every SMS runs build no temporary b-tree SQLite need not build.

SQLite tests an `IN` list of three or more values through a temporary b-tree (opened, filled,
freed: 1.4 µs), also where a partial index's condition is such a list, which it tests at every
insert of a row and twice at every change of it. A part is inserted, claimed, answered and
reported: on the expiry's index of migration 34 that was six such b-trees per SMS, and two more in
the settling of its message. The count of `OpenEphemeral` in each statement's program is what a
regression would change; RETURNING keeps its one (the rows it returns are held in one).

Real SQLite files, opened as the daemon opens them, fresh and upgraded from schema 54.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from gateway.config import load_config
from gateway.store import migrate
from gateway.store.db import Store
from gateway.store.schema import MIGRATIONS
from tests.conftest import config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_fresh_schema import migrated_up_to
from tests.test_policy import to

PART_WRITES = {
    "a part queued": "INSERT INTO parts (message_id, account_id, seq, state, next_attempt_at, expires_at,"
    " destination, source, data_coding, payload, udh, text, via) VALUES (1, 1, 1, 'queued', 0, 0, '+48601',"
    " 'x', 0, x'', x'', 't', NULL)",
    "a part's state changed": "UPDATE parts SET state = 'submitted', link = 'l', smsc_id = 's' WHERE id = 1",
}
# The single-part settle of gateway/store/settling.py, as it is written there.
SETTLE = (
    "UPDATE messages SET state = 'delivered', reason = NULL, finished_at = 1 WHERE id = 1 AND parts_total = 1"
    " AND state <> 'delivered' AND state <> 'delivered' AND state <> 'failed' AND state <> 'expired'"
    " AND state <> 'cancelled' AND state <> 'unreported' RETURNING account_id, notify"
)


def temporary_btrees(conn: sqlite3.Connection, sql: str) -> int:
    return sum(1 for row in conn.execute(f"EXPLAIN {sql}") if row[1] == "OpenEphemeral")


def check(conn: sqlite3.Connection) -> None:
    for what, sql in PART_WRITES.items():
        assert temporary_btrees(conn, sql) == 0, what
    assert temporary_btrees(conn, SETTLE) == 1  # RETURNING's own


def test_a_new_database(tmp_path: Path) -> None:
    Store.open(tmp_path / "smsgw.db").close()
    with closing(sqlite3.connect(tmp_path / "smsgw.db")) as conn:
        check(conn)


def test_a_database_upgraded_from_schema_54() -> None:
    with closing(migrated_up_to(54)) as conn:
        assert temporary_btrees(conn, PART_WRITES["a part's state changed"]) == 2  # what was paid
        for number, migration in enumerate(MIGRATIONS[54:], start=55):
            for statement in migrate._split_sql(migration):
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = ?", (number,))
        check(conn)


async def test_the_statements_of_one_sms_sent_and_reported(tmp_path: Path) -> None:
    """Traced as the daemon runs them: the part's insert, its submit answer, the search for the part
    its report names and the report itself, and the message's settling build none. The answer and
    the report were each an UPDATE … RETURNING, the report's search an ORDER BY … LIMIT 1 and the
    settles RETURNING too: five temporary b-trees per SMS."""
    async with HappySMSC() as smsc:
        path = tmp_path / "config.toml"
        path.write_text(config_text(tmp_path, smsc_port=smsc.port))
        cfg = load_config(path)
        async with running_gateway(cfg) as gw:
            seen: list[str] = []
            gw.store.db.conn.set_trace_callback(seen.append)
            assert (await gw.send(mail(to("601123456"), "Hello"))).error is None
            await gw.until(lambda: "delivered" in gw.states())
            gw.store.db.conn.set_trace_callback(None)
    per_sms = [
        sql
        for sql in seen
        if sql.startswith(
            ("INSERT INTO parts", "UPDATE messages SET state", "UPDATE parts SET state", "SELECT p.id")
        )
        and "WHERE id IN (" not in sql  # a claim's own list of ids is another matter
    ]
    settles = [sql for sql in per_sms if sql.startswith("UPDATE messages SET state")]
    assert len(settles) == 2, seen  # submitted, then delivered
    assert sum(sql.startswith("UPDATE parts SET state") for sql in per_sms) == 2, seen  # answered, reported
    assert sum(sql.startswith("SELECT p.id") for sql in per_sms) == 1, seen  # the reported part's search
    with closing(sqlite3.connect(cfg.db_path)) as conn:
        for sql in per_sms:
            assert temporary_btrees(conn, sql) == 0, sql


async def test_the_accepting_writes_conversation_and_the_dispatchers_wait(tmp_path: Path) -> None:
    """Run for every mail and at every wait of the dispatcher: the conversation the mail opens (its
    id is of no use to the accepting write: RETURNING held it in a temporary b-tree), and the next
    due time (one MIN per waiting state instead of one over an IN list)."""
    async with HappySMSC() as smsc:
        path = tmp_path / "config.toml"
        path.write_text(config_text(tmp_path, smsc_port=smsc.port))
        cfg = load_config(path)
        async with running_gateway(cfg) as gw:
            seen: list[str] = []
            gw.store.db.conn.set_trace_callback(seen.append)
            assert (await gw.send(mail(to("601123456"), "Hello"))).error is None
            await gw.until(lambda: "delivered" in gw.states())
            gw.store.db.conn.set_trace_callback(None)
    conversation = [sql for sql in seen if sql.startswith("INSERT INTO conversations")]
    due = [sql for sql in seen if sql.startswith("SELECT MIN(") and "next_attempt_at" in sql]
    assert len(conversation) == 1 and due, seen
    with closing(sqlite3.connect(cfg.db_path)) as conn:
        for sql in [*conversation, *due]:
            assert temporary_btrees(conn, sql) == 0, sql
