"""What `smsgw restore` takes over from the database it replaces, the features' rows with the store's.
The store carries its own (`gateway.store.restorecarry`: the SMS, mails, answers and their mails) and
may not name a feature's tables (`tests/test_feature_boundaries.py`); the conversations, the
premium SMS and the billing state carry theirs here, called by it after its own, as the clock steps'
moves are (`gateway.stepmoves`); the phones' erasures made since the backup are made again before it,
on the backup's rows (`gateway.privacy.restorecarry`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from billing_reports import restorecarry as billing
from gateway.conversations import restorecarry as conversations
from gateway.premium import restorecarry as premium
from gateway.privacy import restorecarry as erasures
from gateway.store import restorecarry
from gateway.store.restorecarry import Carried

FEATURES = (conversations.carry, premium.carry, billing.carry)
FIRST = (erasures.carry,)


def carry(copy: sqlite3.Connection, replaced: Path | None) -> Carried | str:
    """`restorecarry.carry` with the features' carries."""
    return restorecarry.carry(copy, replaced, FEATURES, FIRST)
