"""Which premium services hold an account from `account remove` (`AccountsRepo.remove_account`).

A service removed before any vote named it (a money record or a correction) holds nothing: added
by mistake and removed, it kept the account from being removed while `premium list` showed none. It
goes with the account, in the removal's transaction, and its reply list and confirmation tokens with
it. One with votes is held by them (the account's `premium_mo` rows, and the rows naming the
service); a live one is listed.
"""

from __future__ import annotations

import sqlite3

# A condition on a `premium_services` row: removed, and named by no vote.
GONE_SERVICE = (
    "removed_at IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM premium_mo p WHERE p.service_id = premium_services.id)"
    " AND NOT EXISTS (SELECT 1 FROM premium_corrections c WHERE c.service_id = premium_services.id)"
)


def delete_gone_services(conn: sqlite3.Connection, account_id: int) -> None:
    """In the account's removal, once nothing holds it: its services that hold nothing, and theirs."""
    gone = f"SELECT id FROM premium_services WHERE account_id = ? AND {GONE_SERVICE}"
    for table in ("premium_reply_acl", "premium_verifications"):
        conn.execute(f"DELETE FROM {table} WHERE service_id IN ({gone})", (account_id,))
    conn.execute(f"DELETE FROM premium_services WHERE account_id = ? AND {GONE_SERVICE}", (account_id,))
