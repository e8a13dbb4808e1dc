"""Whose number an SMS to it is, as the inbound address decides it: the senders an account sent from
are remembered (migration 52 remembers today's and a number left before it, whatever form the new
sender was typed in), a number an account never sent from is not kept from another account, and one
it sent from is kept once it moves. A real database, built by the migrations where the upgrade is
the subject; split from test_inbound_address.py by subject (it was over 400 lines)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.conversations import inbound
from gateway.store.db import Store
from gateway.store.migrate import _split_sql
from gateway.store.schema import MIGRATIONS
from tests.conftest import free_port
from tests.test_answers_context import DAY, PHONE
from tests.test_inbound_address import OTHER, OWN, RECEPTION, cli, own_config


def at_version_51(path: Path) -> sqlite3.Connection:
    """A database as smsgw left it before migration 52, built by the migrations up to it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (51)")
    for migration in MIGRATIONS[:51]:
        for statement in _split_sql(migration):
            conn.execute(statement)
    return conn


CONVERSATION = (
    "INSERT INTO conversations (phone, number, user_email, account_id, domain, text, started_at,"
    " last_mt_at) VALUES (?, ?, ?, ?, 'sms.example.com', 'x', 0, ?)"
)


def senders(store: Store) -> list[tuple[Any, ...]]:
    rows = store.db.conn.execute("SELECT account_id, sender, until FROM account_senders").fetchall()
    return sorted(rows, key=str)


def test_the_upgrade_remembers_todays_senders_and_the_moves_kept_conversations_show(tmp_path: Path) -> None:
    # A number that moved before the upgrade: the conversations still kept show the former account
    # sent from it until its last SMS from it (acme's own conversations on its own number do not count).
    conn = at_version_51(tmp_path / "db.sqlite")
    conn.execute(
        "INSERT INTO accounts (name, sender, created_at) VALUES ('acme', ?, 0), ('other', ?, 0)",
        (OWN, "+48500600702"),
    )
    conn.execute(CONVERSATION, (PHONE, OWN, "bob@other.example", 2, 1000.0))
    conn.execute(CONVERSATION, ("+48601123457", OWN, "bob@other.example", 2, 1500.0))
    conn.execute(CONVERSATION, ("+48601123458", OWN, "anna@acme.example", 1, 2000.0))
    conn.close()
    store = Store.open(tmp_path / "db.sqlite")
    try:
        assert senders(store) == sorted(
            [(1, OWN, None), (2, "+48500600702", None), (2, OWN, 1500.0)], key=str
        )
        # acme sent from OWN (a conversation since ever): kept with until; other's rows go with it.
        store.db.conn.execute("UPDATE accounts SET sender = NULL WHERE name = 'acme'")
        store.db.conn.execute("DELETE FROM accounts WHERE name = 'other'")
        rows = store.db.conn.execute(
            "SELECT account_id, sender, until IS NULL FROM account_senders"
        ).fetchall()
        assert rows == [(1, OWN, 0)]
    finally:
        store.close()


@pytest.mark.parametrize("typed", ["48500600700", "0048500600700", OWN])
def test_the_upgrade_remembers_a_number_left_before_it_whatever_form_the_new_sender_was_typed_in(
    tmp_path: Path, typed: str
) -> None:
    # acme left OWN yesterday for the default sender; "new" gives it as `--sender 48500600700` (stored
    # as typed, the conversations store E.164) before the upgrade, or takes it only after: the seed
    # compared exact strings of numbers some account sends from today, and remembered neither.
    cfg = own_config(tmp_path, free_port(), OWN)
    yesterday = time.time() - DAY
    for before in (True, False):
        path = tmp_path / f"db-{before}.sqlite"
        conn = at_version_51(path)
        conn.execute(
            "INSERT INTO accounts (name, sender, created_at) VALUES ('old', NULL, 0), ('new', ?, 0)",
            (typed if before else None,),
        )
        conn.execute(CONVERSATION, (PHONE, OWN, "anna@acme.example", 1, yesterday))
        conn.execute(CONVERSATION, ("+48601123457", OWN, "anna@acme.example", 1, yesterday - 10))
        if before:  # new's own conversation on its own number, in E.164: not a number it left
            conn.execute(CONVERSATION, ("+48601123458", OWN, "bob@new.example", 2, yesterday + 10))
        conn.close()
        store = Store.open(path)
        try:
            if not before:
                store.accounts.update_account("new", sender=typed)
            assert [row for row in senders(store) if row[2] is not None] == [(1, OWN, yesterday)]
            until = inbound.moved_until(store.db.conn, cfg, typed, 2)
            assert until == pytest.approx(
                yesterday + cfg.gateway.retention_days * DAY + cfg.replies.window_seconds
            )
        finally:
            store.close()


def test_a_number_an_account_never_sent_from_is_not_kept_from_another_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A typo account added and removed, and another account's sender mistyped for a moment: neither
    # sent an SMS from OWN, yet each kept acme's own number from its inbound address for 97 days.
    cfg = own_config(tmp_path, free_port(), "+48500600701", f"\n[[account]]\n{OTHER}")
    config = tmp_path / "config.toml"
    store = Store.open(cfg.db_path)
    store.accounts.add_account("acme", sender="+48500600701")
    store.accounts.add_account("other", sender="+48500600702")
    store.accounts.add_account("Acme-typo", sender=OWN)
    store.close()
    cli(config, capsys, "account", "remove", "Acme-typo")
    cli(config, capsys, "account", "set", "other", "--sender", OWN)
    cli(config, capsys, "account", "set", "other", "--sender", "+48500600702")
    said = cli(config, capsys, "account", "set", "acme", "--sender", OWN, "--inbound-address", RECEPTION)
    assert not any("lately" in line for line in said), said
    store = Store.open(cfg.db_path)
    try:
        acme = store.accounts.get_account("acme").id
        assert inbound.moved_until(store.db.conn, cfg, OWN, acme) is None
        assert not [row for row in senders(store) if row[1] == OWN and row[0] != acme]
    finally:
        store.close()


def test_a_number_an_account_sent_from_is_kept_once_it_moves(tmp_path: Path) -> None:
    # The evidence is an SMS or a conversation of the account since it took the number, read off
    # the indexes by account and time: one from before it took it does not count.
    cfg = own_config(tmp_path, free_port(), "+48500600701")
    store = Store.open(tmp_path / "db.sqlite")
    try:
        conn = store.db.conn
        store.accounts.add_account("other", sender="+48500600702")
        other = store.accounts.get_account("other").id
        time.sleep(0.01)
        conn.execute(CONVERSATION, (PHONE, "+48500600702", "bob@other.example", other, time.time()))
        time.sleep(0.01)
        store.accounts.update_account("other", sender=OWN)
        store.accounts.update_account("other", sender="+48500600703")  # a moment with OWN: no SMS
        assert [s for _, s, u in senders(store) if u is not None] == ["+48500600702"]
        store.accounts.update_account("other", sender=OWN)
        conn.execute(CONVERSATION, ("+48601123457", OWN, "bob@other.example", other, time.time() + 1))
        store.accounts.update_account("other", sender="+48500600703")
        assert inbound.moved_until(conn, cfg, "48500600700", other + 1) is not None
        plan = " ".join(
            str(r[3])
            for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT 1 FROM messages WHERE account_id = 1 AND created_at >= 0"
                " UNION ALL SELECT 1 FROM conversations WHERE account_id = 1 AND last_mt_at >= 0"
            )
        )
        assert "messages_billing (account_id=? AND created_at>?)" in plan, plan
        assert "conversations_account (account_id=? AND last_mt_at>?)" in plan, plan
    finally:
        store.close()
