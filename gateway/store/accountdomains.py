"""The domains of an account's users, and which account holds a domain, for a company admin's add
(`gateway.web.userdomains`).

The check loaded every user of the account on the loop (`AccountsRepo.list_users`: 3,000 rows with
their accounts and role keys) to learn which domains it has. It is one query now, bounded: the
domains as the check compares them (after the address's "@", lowercased), the one asked about
first if the account has it, then by name, at most `most` of them for the refusal's words.

EXPLAIN QUERY PLAN: SEARCH users USING INDEX users_account (migration 61), then a temporary
B-tree for the DISTINCT and the ORDER BY: the account's users alone, short rows and no join
(0.03 ms for a small account; 1.7 ms for one of 3,000 users). Which account holds a domain still
reads every user once: a domain is no column to index.
"""

from __future__ import annotations

import sqlite3

# The part after the "@": a user's address has one (`acl.accounts.user_address_problem` refuses quotes,
# so no "@" in the part before it), the one str.rpartition("@") splits at. Searched from the left:
# rtrim() by every other character of the address, which finds the last "@", took 4.2 ms over 6,000
# users against 1.6 ms.
_DOMAIN = "lower(substr(email, instr(email, '@') + 1))"


def account_domains(conn: sqlite3.Connection, account_id: int, domain: str, most: int) -> list[str]:
    """The account's domains of users other than operators (an operator's login in an account is not
    its domain): `domain` first if among them, then the others by name, `most` at most."""
    rows = conn.execute(
        f"SELECT DISTINCT {_DOMAIN} AS d FROM users WHERE account_id = ? AND role != 'operator'"
        " ORDER BY d = ? DESC, d LIMIT ?",
        (account_id, domain.lower(), most),
    )
    return [d for (d,) in rows]


def domain_holder(conn: sqlite3.Connection, domain: str) -> int | None:
    """The account holding `domain` for its admin's adds: that of its first user other than an
    operator (None: no user at it)."""
    suffix = "@" + domain.lower()
    row = conn.execute(
        "SELECT account_id FROM users WHERE role != 'operator' AND substr(lower(email), -?) = ?"
        " ORDER BY id LIMIT 1",
        (len(suffix), suffix),
    ).fetchone()
    return None if row is None else int(row[0])
