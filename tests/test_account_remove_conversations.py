"""An account whose only rows left are conversations (its SMS purged, the reply window still open) is
not removed: its conversations would pass to the next account given its id (they have no foreign key;
the conversations package names them through the share `account remove` passes in)."""

from __future__ import annotations

from pathlib import Path

from gateway.store.db import Store
from tests.billing_world import at, cli, prepare
from tests.conftest import free_port


def test_an_account_holding_only_conversations_is_not_removed(tmp_path: Path) -> None:
    path, cfg = prepare(tmp_path, free_port(), last_billed="2026-02", traffic={})
    store = Store.open(cfg.db_path, clock=lambda: at(2026, 1, 5))
    try:
        acc = store.accounts.add_account("Tmp")
        store.db.conn.execute(
            "INSERT INTO conversations (phone, number, user_email, account_id, domain, text, started_at,"
            " last_mt_at) VALUES ('+48601123400', '+48500000000', 'a@tmp.pl', ?, 'sms.example', 'x', 1, 1)",
            (acc.id,),
        )
        store.db.conn.commit()
    finally:
        store.close()
    removed = cli(path, "account", "remove", "Tmp")
    assert removed.returncode == 1, removed.stdout
    assert "account 'Tmp' is not removed: it has conversations" in removed.stderr, removed.stderr
