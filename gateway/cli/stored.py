"""What `check-config` reads of the database: account settings stored under older rules, or typed
in without the config's knowledge, that the config check cannot see. Read-only: check-config may
run beside the daemon and never migrates or writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.adminrules import sender_problem
from gateway.config import Config
from gateway.configcheck import loop_reason


def stored_sender_problems(db_path: Path) -> list[tuple[str, str]]:
    """(account, why) for senders stored before today's sender rule that no SMSC sends alike.

    The rule is checked where a sender is set, so an account set under an older, looser rule (a €
    or an accented letter) keeps it, and each of its SMS fails at submit. Read-only: check-config
    may run beside the daemon and never migrates or writes.
    """
    if not db_path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2) as conn:
            rows = conn.execute("SELECT name, sender FROM accounts WHERE sender IS NOT NULL").fetchall()
    except sqlite3.Error:
        return []  # an unreadable database is `run`'s to report, with its exit status
    return [(name, why) for name, sender in rows if (why := sender_problem(sender)) is not None]


def stored_address_loops(cfg: Config) -> list[tuple[str, str, str, str]]:
    """(account, option, address, why) for stored billing and notice addresses that reach the gateway.

    They are the database's, not the config's, so they are warned of rather than refused (as
    `mail.admin_address` is): the billing file or the bounce notice mailed there comes back to the
    gateway's relay port and is refused, read by nobody. Read-only, as `stored_sender_problems`."""
    if not cfg.db_path.exists():
        return []
    query = (
        "SELECT a.name, '--billing-to', b.address FROM account_billing_to b JOIN accounts a"
        " ON a.id = b.account_id UNION ALL SELECT name, '--notify-address', notify_address FROM accounts"
        " WHERE notify_address IS NOT NULL ORDER BY 1, 2, 3"
    )
    try:
        with sqlite3.connect(f"file:{cfg.db_path}?mode=ro", uri=True, timeout=2) as conn:
            rows = conn.execute(query).fetchall()
    except sqlite3.Error:
        return []  # an unreadable (or not yet migrated) database is `run`'s to report
    return [(n, opt, addr, why) for n, opt, addr in rows if (why := loop_reason(cfg, addr)) is not None]
