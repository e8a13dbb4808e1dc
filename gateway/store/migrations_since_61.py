"""Migrations 61 onwards, each with why it was made: the end of `migrations.SINCE_CORE`, which lists
them after its own (gateway/store/migrations.py had reached the size a module is kept under).
Appended to, never edited: a database records the version it reached.
"""

from __future__ import annotations

SINCE_61: list[str] = [
    # 61: the panel's premium page for a month still open regrouped all its votes at each load, on
    # the reader's one thread (0.8-2.4 s with 300,000 votes a month, every other admin's page waiting):
    # by the index of `received_at` or of (account_id, received_at), then each vote's row (they are
    # wide, with their text), then a temporary B-tree for the GROUP BY. The two indexes below hold
    # every column `premium.stats.grouped` reads, so the rows are not read; and the page keeps a
    # month's grouping and adds the votes stored since (`web.premiumread`), as long as no vote stored
    # before changed what it counts: `premium_generation` takes a new random value whenever one
    # does (a vote claimed, released or moved to another account, a vote deleted by hand), in the
    # same transaction, as `settings_generation` does for the settings. The users of an account were
    # read by scanning every user (the account dashboard, the company admin's domain check):
    # indexed by account now. The indexes take seconds at the upgrade: 1.7 s on a copy of a year
    # of 1.2M mails, 340,000 votes and 3,000 users, 5 s with its pages not yet in memory.
    """
    CREATE INDEX IF NOT EXISTS users_account ON users(account_id);
    CREATE INDEX IF NOT EXISTS premium_mo_month
        ON premium_mo(received_at, service_id, number, parts_at, follows, parts, price, commission);
    CREATE INDEX IF NOT EXISTS premium_mo_account_month
        ON premium_mo(account_id, received_at, service_id, number, parts_at, follows, parts, price,
            commission);
    CREATE TABLE IF NOT EXISTS premium_generation (value INTEGER NOT NULL);
    INSERT INTO premium_generation SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM premium_generation);
    CREATE TRIGGER IF NOT EXISTS premium_mo_update_generation
        AFTER UPDATE OF received_at, service_id, account_id, number, parts_at, follows, parts, price,
            commission ON premium_mo
    BEGIN UPDATE premium_generation SET value = random(); END;
    CREATE TRIGGER IF NOT EXISTS premium_mo_delete_generation AFTER DELETE ON premium_mo
    BEGIN UPDATE premium_generation SET value = random(); END;
    """,
]
