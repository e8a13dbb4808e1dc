"""What `smsgw restore` takes over from the database it replaces, the features' rows with the store's.
The store carries its own (`gateway.store.restorecarry`: the SMS, mails, answers and their mails) and
may not name a feature's tables (`tests/test_feature_boundaries.py`); the conversations, the
premium SMS and the billing state carry theirs here, called by it after its own, as the clock steps'
moves are (`gateway.stepmoves`); the phones' erasures made since the backup are made again before it,
on the backup's rows (`gateway.privacy.restorecarry`).

A backup taken in the middle of a clock step's move (`gateway.stepmoves`) holds its plan, which the
next start finishes. With rows carried from the database it replaces, which finished that move, the
plan is dropped: the carried rows were moved there already, and the next start moved them again, the
step twice over.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports import restoreblind
from billing_reports import restorecarry as billing
from gateway.conversations import restorecarry as conversations
from gateway.premium import restorecarry as premium
from gateway.privacy import restorecarry as erasures
from gateway.stepmoves import PLAN_KEY
from gateway.store import restorecarry
from gateway.store.restorecarry import Carried

FEATURES = (conversations.carry, premium.carry, billing.carry)
FIRST = (erasures.carry,)


def carry(
    copy: sqlite3.Connection, replaced: Path | None, billing: tuple[Path, ZoneInfo, float] | None = None
) -> Carried | str:
    """`restorecarry.carry` with the features' carries; a move's plan left when anything was carried.
    When nothing could be carried, the months billed since the backup are taken from their files on
    disk (`billing_reports.restoreblind`), `billing`: the billing directory, its time zone and now."""
    carried = restorecarry.carry(copy, replaced, FEATURES, FIRST)
    if isinstance(carried, str) and billing is not None:
        copy.execute("SAVEPOINT from_disk")
        try:
            said = restoreblind.take_from_disk(copy, *billing)
        except OSError as exc:  # the restore goes on: the months billed since are billed again
            copy.execute("ROLLBACK TO from_disk")
            said = f"the billing files in billing_dir could not be read ({exc.strerror}): the months"
            said += " billed since the backup are billed and mailed again at the next start"
        except BaseException:
            copy.execute("ROLLBACK TO from_disk")
            raise
        finally:
            copy.execute("RELEASE from_disk")
        return f"{carried}; {said}" if said else carried
    if isinstance(carried, Carried) and _anything(carried) and _has_plan(copy):
        copy.execute("DELETE FROM main.billing_state WHERE key = ?", (PLAN_KEY,))
        carried.features.append("the clock step's move under way in the backup left (its rows carried moved)")
    return carried


def _anything(carried: Carried) -> bool:
    counts = (carried.sms, carried.cancelled, carried.reports, carried.mails, carried.notices)
    more = (carried.answers, carried.handled, carried.counters, carried.optouts)
    return any(counts) or any(more) or bool(carried.later or carried.features)


def _has_plan(copy: sqlite3.Connection) -> bool:
    return copy.execute("SELECT 1 FROM main.billing_state WHERE key = ?", (PLAN_KEY,)).fetchone() is not None
