"""What the MO's write reads to tell a CIMD2 destination written as a sub-address from our number
written whole (`GatewayEvents._whole`, `numbers.sub_address_forms`): it runs inside the write, on the
event loop, for every MO of a link with `sender_prefix`. Every conversation of the phone and every
account's sender (a scan of accounts and a temporary b-tree) were read for each MO, even one naming
our number whole: 22 ms an MO with 20,000 accounts. A real SQLite file with many accounts; the cost
counted in SQLite VM steps, not time."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.config import parse_config
from gateway.events import GatewayEvents
from gateway.notifier import Notifier
from gateway.store.db import Store
from tests.conftest import config_text
from tests.test_store import Clock

PHONE = "+48601123456"
ACCOUNTS = 3000


def _steps(conn: sqlite3.Connection, call: Callable[[], Any]) -> tuple[Any, int]:
    count = [0]

    def step() -> int:
        count[0] += 1
        return 0

    conn.set_progress_handler(step, 1)
    try:
        return call(), count[0]
    finally:
        conn.set_progress_handler(None, 0)


def _events(tmp_path: Path) -> tuple[GatewayEvents, sqlite3.Connection]:
    text = config_text(tmp_path, smsc_port=1, smsc_extra='sender_prefix = "+48100"')
    cfg = parse_config(text.replace('type = "smpp"', 'type = "cimd2"'), source="test", base_dir=tmp_path)
    store = Store.open(tmp_path / "db.sqlite", clock=Clock())
    conn = store.db.conn
    required = [
        r[1] for r in conn.execute("PRAGMA table_info(accounts)") if r[3] and r[4] is None and r[1] != "id"
    ]
    with store.db.transaction():
        for i in range(ACCOUNTS):
            values: dict[str, Any] = {c: store.clock() if c.endswith("_at") else "x" for c in required}
            values.update(name=f"acct{i}", sender=f"+48100{i + 300000:06d}")
            conn.execute(
                f"INSERT INTO accounts ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                list(values.values()),
            )
    return GatewayEvents(store, Notifier(store, cfg)), conn


def test_an_mo_naming_our_number_whole_reads_no_account_nor_conversation(tmp_path: Path) -> None:
    events, conn = _events(tmp_path)
    for whole in ("48100200300", "0048100200300", "+48100200300"):
        found, steps = _steps(conn, lambda w=whole: events._whole(w, "+48100", PHONE))
        assert found is None and steps == 0, (whole, steps)


def test_a_sub_address_is_looked_up_by_its_candidates_alone(tmp_path: Path) -> None:
    events, conn = _events(tmp_path)
    assert events._whole("200300", "+48100", PHONE) == "+48100200300"  # the default sender
    assert events._whole("301234", "+48100", PHONE) == "+48100301234"  # an account's sender
    assert events._whole("999999", "+48100", PHONE) is None  # none of ours: kept as it came
    # The accounts' senders are read once while the settings stand, not for each MO.
    found, steps = _steps(conn, lambda: events._whole("302345", "+48100", PHONE))
    assert found == "+48100302345"
    assert steps < ACCOUNTS // 10, steps
