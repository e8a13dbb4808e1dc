"""A feature's share of `account remove` (`AccountsRepo.remove_account`), given by the caller so that the
store names none of the feature's tables and imports no feature built on it (ARCHITECTURE.md section 3).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import NamedTuple


class AccountShare(NamedTuple):
    """`holds`: what of the feature's rows keeps the account (as the admin reads it in the refusal),
    none when nothing does. `release`: what of them goes with the account once nothing holds it, in
    the removal's transaction (a premium service removed before any vote named it)."""

    holds: Callable[[sqlite3.Connection, int], list[str]]
    release: Callable[[sqlite3.Connection, int], None] | None = None
