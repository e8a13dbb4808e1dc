"""`account remove` of an account whose premium service was added by mistake and removed before any
vote came: `premium list` shows none, and nothing of it is billing or audit history, so it no longer
holds the account (it goes with it, in the removal's transaction). One removed after its votes came
is held by them, as its live one is.

The commands run as `smsgw` runs them, each its own process, on a real state directory.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from gateway.store.db import Store
from tests.billing_world import cli
from tests.conftest import config_text


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=2775, timezone="Europe/Warsaw")
    path.write_text(text + '\n[premium]\nnumbers = ["7355"]\n')
    (tmp_path / "state").mkdir()
    return path


def ok(config: Path, *args: str) -> str:
    done = cli(config, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_service_removed_before_any_vote_does_not_hold_its_account(config: Path, tmp_path: Path) -> None:
    ok(config, "account", "add", "tmpacc")
    ok(config, "premium", "add", "KPT01", "--account", "tmpacc", "--email", "votes@tmp.example")
    ok(config, "premium", "remove", "KPT01")
    assert "no premium services" in ok(config, "premium", "list")
    assert ok(config, "account", "remove", "tmpacc").strip() == "account tmpacc removed"
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as c:
        for table in ("premium_services", "premium_reply_acl", "premium_verifications"):
            assert c.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,), table


def test_a_live_service_or_one_with_votes_still_holds_it(config: Path, tmp_path: Path) -> None:
    ok(config, "account", "add", "tmpacc")
    ok(config, "premium", "add", "KPT01", "--account", "tmpacc", "--email", "votes@tmp.example")
    refused = cli(config, "account", "remove", "tmpacc")
    assert refused.returncode == 1 and "it has premium services" in refused.stderr, refused.stderr

    # A vote came for it, then it was removed: the vote's money record names it.
    store = Store.open(tmp_path / "state" / "smsgw.db")
    try:
        with store.db.transaction():
            store.db.conn.execute(
                "INSERT INTO premium_mo (mo_id, number, phone, service_id, account_id, password, parts,"
                " price, commission, text, state, received_at) VALUES (1, '7355', '+48601123456', 1,"
                " (SELECT id FROM accounts WHERE name = 'tmpacc'), 'KPT01', 1, 300, 110, 'vote', 'mailed', 0)"
            )
    finally:
        store.close()
    ok(config, "premium", "remove", "KPT01")
    refused = cli(config, "account", "remove", "tmpacc")
    assert refused.returncode == 1, refused.stdout
    assert "it has premium services, premium votes" in refused.stderr, refused.stderr
