"""A billed month the wall clock stepped back into is billed again once its end passes again (R-5.2).

A clock running an hour ahead (a hardware clock in local time read as UTC, before NTP syncs) bills
October at its reading of 00:05 on November 1st; NTP then steps it back to 23:05 on October 31st.
The SMS accepted in the rest of that hour carry October's dates, and so do MOs the step moves back
over the month's end (`MoRepo.shift_for_clock_step`): October's file, mailed already, does not list
them, November's starts at its midnight, and they were billed nowhere.

So the housekeeping's write that moves the rows for the step (`stepped_back`) records such a month
as to be billed again and puts `last_billed` back before it: the scheduled run bills it again when
the clock passes its end again, as it bills any month that ended (`job.run_due`). That run keeps the
mailed files on disk (`mailed.keep_mailed`) and mails the files whose rows changed since they were
mailed, as `billing run --send --again` would mail them; a file that came out the same is not mailed
again. `smsgw billing list` names the month until then.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

from billing_reports import repo
from billing_reports.monthly import Month
from gateway.store.clockstep import ClockStep
from gateway.store.db import Store

_PREFIX = "rebill/"  # + YYYY-MM: `<unix time of the step> <its seconds>`


def _key(month: Month) -> str:
    return f"{_PREFIX}{month}"


def stepped_back(store: Store, tz: ZoneInfo, step: ClockStep) -> list[Month]:
    """In the write that moves the rows for a step back, before they move: the billed months the
    clock now reads (or an MO is moved back) into, recorded to be billed again, oldest first.

    Never a month before the first account's: a clock reset to 1970 would have every month since
    billed again for nothing in them."""
    conn, now = store.db.conn, store.clock()
    last = repo.state(conn, repo.LAST_BILLED)
    if last is None:
        return []
    billed = Month.parse(last)
    end = billed.bounds(tz)[1]
    if now < end:
        first = Month.containing(now, tz)
        if (since := repo.installed_at(conn)) is not None:
            first = max(first, Month.containing(since, tz))
        if first > billed:  # billed before the first account: nothing of it to bill again
            return []
    elif store.mo.moved_over(step, end):
        first = billed
    else:
        return []
    months = [first]
    while months[-1] < billed:
        months.append(months[-1].next())
    billing = repo.BillingRepo(store.db, store.clock)
    for month in months:
        if billing.get(_key(month)) is None:  # the first step into it says when it began
            billing.put(_key(month), f"{now:.0f} {step.seconds:.0f}")
    billing.put(repo.LAST_BILLED, str(first.previous()))
    return months


def again(conn: sqlite3.Connection, month: Month) -> bool:
    """Whether the month is billed again after a step back (its changed files mailed again)."""
    return repo.state(conn, _key(month)) is not None


def billed_again(conn: sqlite3.Connection, month: Month) -> None:
    """The month was billed again: no longer waiting (in the write that records it billed)."""
    conn.execute("DELETE FROM billing_state WHERE key = ?", (_key(month),))


def waiting(conn: sqlite3.Connection, tz: ZoneInfo) -> dict[str, str]:
    """YYYY-MM → what `billing list` says of a month waiting to be billed again."""
    rows = conn.execute(
        "SELECT key, value FROM billing_state WHERE key >= ? AND key < ? ORDER BY key",
        (_PREFIX, _PREFIX[:-1] + "0"),
    )
    said = {}
    for key, value in rows:
        month = Month.parse(key.removeprefix(_PREFIX))
        at, seconds = (float(v) for v in value.split())
        said[str(month)] = (
            f"to be billed again: the clock stepped back {seconds:.0f} s into it on"
            f" {datetime.fromtimestamp(at, tz):%Y-%m-%d %H:%M}; the scheduled run after"
            f" {month.next().start(tz):%Y-%m-%d %H:%M} writes it again and mails the files that changed"
        )
    return said
