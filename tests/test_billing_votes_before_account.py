"""Paid votes that came before the first account are billed by the daemon, from their month on.

A new installation's premium number took votes before any account was made: each went to the
fallback, its money the operator's ("(premium MO without a service)" in the summary). The daemon
started billing at the first account's month, so that month was never billed nor mailed, and only
`billing run --month` by hand listed the money. Over a real store with an injected clock.
"""

from __future__ import annotations

from pathlib import Path

from billing_reports import job
from billing_reports.monthly import Month
from gateway.scheduler import purge
from gateway.store.db import Store
from tests.test_billing import add_account, at, setup


def fallback_vote(store: Store, ts: float) -> None:
    """A paid vote no service took (unknown password): the operator's, at 9.00 PLN."""
    conn = store.db.conn
    with store.db.transaction():
        mo = conn.execute(
            "INSERT INTO mo (link, source, destination, text, state, received_at, parts)"
            " VALUES ('smpp', '+48601002001', '7955', 'KPZZZ vote', 'premium', ?, 1)",
            (ts,),
        ).lastrowid
        conn.execute(
            "INSERT INTO premium_mo (mo_id, number, phone, parts, price, commission, text, state,"
            " received_at) VALUES (?, '7955', '+48601002001', 1, 900, 330, 'vote', 'fallback', ?)",
            (mo, ts),
        )


def mails(store: Store) -> list[str]:
    return [r[0] for r in store.db.conn.execute("SELECT rcpt FROM outbox ORDER BY id")]


async def test_votes_before_any_account_are_billed_and_mailed_in_their_month(tmp_path: Path) -> None:
    cfg, store, clock, _ = setup(tmp_path, at(2026, 11, 10), retention_days=7)
    fallback_vote(store, at(2026, 11, 15, 12))
    clock.now = at(2026, 12, 2, 9)  # no account yet
    await purge(store, cfg)  # the start's purge, before the billing: November is not billed yet
    assert store.db.conn.execute("SELECT COUNT(*) FROM premium_mo").fetchone()[0] == 1
    assert await job.run_due(store, cfg) == [Month(2026, 11)]
    summary = (cfg.state_dir / "billing" / "2026-11" / "_summary.txt").read_text()
    assert "(premium MO without a service)" in summary and "\t9.00\t" in summary, summary
    assert mails(store) == [cfg.mail.admin_address]  # the operator's money, mailed to them
    add_account(store)  # the first account, in December
    clock.now = at(2027, 1, 2, 9)
    assert await job.run_due(store, cfg) == [Month(2026, 12)]
    assert mails(store) == [cfg.mail.admin_address] * 3  # and the account's file and summary


async def test_votes_before_the_first_account_are_billed_from_their_month(tmp_path: Path) -> None:
    # The account came on 2 December, the votes in November: November was skipped for good.
    cfg, store, clock, _ = setup(tmp_path, at(2026, 11, 10))
    fallback_vote(store, at(2026, 11, 15, 12))
    clock.now = at(2026, 12, 2, 9)
    add_account(store)
    assert await job.run_due(store, cfg) == [Month(2026, 11)]
    assert (cfg.state_dir / "billing" / "2026-11" / "_summary.txt").exists()
    clock.now = at(2027, 1, 2, 9)
    assert await job.run_due(store, cfg) == [Month(2026, 12)]


async def test_an_installation_with_no_traffic_and_no_account_bills_nothing(tmp_path: Path) -> None:
    cfg, store, clock, _ = setup(tmp_path, at(2026, 11, 10))
    clock.now = at(2027, 1, 2, 9)
    assert await job.run_due(store, cfg) == []
    assert not (cfg.state_dir / "billing").exists() or not any((cfg.state_dir / "billing").iterdir())
