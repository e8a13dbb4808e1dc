"""What `status`, `queue list` and the panel call held for quiet hours (R-2.4).

A queued part never tried and due later than now was taken for a quiet-hours hold whatever its
account: after a step back of the wall clock the clock check did not see (made while the daemon was
stopped, before its reading was kept), every SMS queued was "held for quiet hours until 00:46",
under an account with no quiet hours, and that hour named no day. A real SQLite store, its clock
injected.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.adminrules import quiet_held
from gateway.smtp.accept import accept
from gateway.store.db import Store
from gateway.web.messages import held_note
from tests.test_store import Clock, acceptance

HOUR = 3600.0
WARSAW = ZoneInfo("Europe/Warsaw")


async def test_a_part_due_later_is_held_for_quiet_hours_only_under_an_account_that_has_them(
    tmp_path: Path,
) -> None:
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    account = store.accounts.add_account("acme")
    accepted_at = clock()
    await accept(store, dataclasses.replace(acceptance(["+48601000001"]), account_id=account.id))
    clock.t -= HOUR  # stepped back, unseen: the part is due an hour from now
    assert store.admin.quiet_held() == (0, None)
    # Quiet hours set directly: through the account's settings a change releases what is held.
    with store.db.conn:
        store.db.conn.execute("UPDATE accounts SET quiet_start = '22:00', quiet_end = '07:00'")
    assert store.admin.quiet_held() == (1, accepted_at)
    store.close()


def test_a_release_on_another_day_is_said_with_its_date() -> None:
    now = 1_700_000_000.0  # 2023-11-14 23:13 in Warsaw
    assert quiet_held(now + 600, WARSAW, now) == "held for quiet hours until 23:23"
    assert quiet_held(now + 8 * HOUR, WARSAW, now) == "held for quiet hours until 2023-11-15 07:13"
    assert quiet_held(None, WARSAW, now) == ""


def test_the_panels_lists_say_the_date_of_a_release_on_another_day() -> None:
    # The panel's message lists and dashboard said the hour alone, whatever the day.
    now = 1_700_000_000.0
    assert held_note(WARSAW, lambda: now)(now + 8 * HOUR) == "held for quiet hours until 2023-11-15 07:13"
