"""A billed month the wall clock stepped back into is billed again once its end passes again (R-5.2).

A clock running an hour ahead (a hardware clock in local time read as UTC, before NTP syncs) bills
October at its reading of 00:05 on November 1st; NTP then steps it back to 23:05 on October 31st.
The SMS accepted in the rest of that hour carry October's dates, and so do MOs and SMS the step moves
back over the month's end (`stepchunks.mo_chunk`, `senttimes.shift_sent_ids`): October's file,
mailed already, does not list them, November's starts at its midnight, and they were billed nowhere.

So the housekeeping's write that moves the rows for the step (`stepped_back`) records such a month
as to be billed again and puts `last_billed` back before it: the scheduled run bills it again when
the clock passes its end again, as it bills any month that ended (`job.run_due`). That run keeps the
mailed files on disk (`mailed.keep_mailed`) and mails the files whose rows changed since they were
mailed, as `billing run --send --again` would mail them; a file that came out the same is not mailed
again. `smsgw billing list` names the month until then.

A step while the scheduled run bills a month is one it may not have seen: its files can be written
from the rows before the step, and `last_billed` does not name the month yet. So the run records the
month as under way before it reads the rows (`run_begins`), a step back takes that month for billed,
and the step that records it to be billed again also takes the run's mark away: the run's last
write (`run_ends`) then leaves `last_billed` and the month's record as the step left them, where it
would otherwise record the month billed over the step, or forget a step into a month being billed
again. A mark left by a run that failed or crashed names a month whose files may be out in part: a
step back into it bills it again too, which its mailed files need.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

from billing_reports import mtlate, repo
from billing_reports.monthly import Month
from gateway.store import senttimes
from gateway.store.clockstep import ClockStep
from gateway.store.db import Store

REBILL_PREFIX = "rebill/"  # + YYYY-MM: `<unix time of the step> <its seconds>`
UNDER_WAY = "billing_under_way"  # YYYY-MM: the month the scheduled run is billing


def _key(month: Month) -> str:
    return f"{REBILL_PREFIX}{month}"


def _moved_over(store: Store, step: ClockStep, end: float) -> bool:
    """Whether the step moves an MO, or an SMS's acceptance (`senttimes.shift_sent`), back over `end`."""
    return store.mo.moved_over(step, end) or senttimes.moved_over(store.db.conn, step, end)


def stepped_back(store: Store, tz: ZoneInfo, step: ClockStep) -> list[Month]:
    """In the write that moves the rows for a step back, before they move: the billed months the
    clock now reads (or an MO is moved back) into, recorded to be billed again, oldest first. The
    month the scheduled run is billing counts as billed (`run_begins`).

    Never a month before the first account's or the first traffic's, whichever came first: a clock
    reset to 1970 would have every month since billed again for nothing in them, while a month of paid
    votes to the fallback before any account was billed (`monthly.due_months`) and is billed again."""
    conn, now = store.db.conn, store.clock()
    mtlate.stepped_back(conn, step, *senttimes.moving(conn, now, step))  # whether billed or not
    running = repo.state(conn, UNDER_WAY)  # its files may be out, or be written from the rows before
    marks = sorted({Month.parse(v) for v in (repo.state(conn, repo.LAST_BILLED), running) if v is not None})
    if not marks:
        return []
    billed = marks[-1]
    if now < billed.bounds(tz)[1]:
        first = Month.containing(now, tz)
        known = [t for t in (repo.installed_at(conn), repo.first_use(conn)) if t is not None]
        if known:
            first = max(first, Month.containing(min(known), tz))
        if first > billed:  # billed before the first account: nothing of it to bill again
            return []
    elif crossed := [m for m in marks if _moved_over(store, step, m.bounds(tz)[1])]:
        first = crossed[0]
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
    if running is not None and Month.parse(running) in months:  # the run must not record it billed
        conn.execute("DELETE FROM billing_state WHERE key = ?", (UNDER_WAY,))
    return months


def run_begins(store: Store, month: Month, tz: ZoneInfo | None = None) -> None:
    """Before the scheduled run reads the month's rows: from now on a step back may be one the
    run's files do not show, and it is the step's write that knows (`stepped_back`). With `tz`, the
    time its MTs are billed as of, if its first bill (`mtlate.record_as_of`)."""
    with store.db.transaction():
        repo.BillingRepo(store.db, store.clock).put(UNDER_WAY, str(month))
        if tz is not None:
            mtlate.record_as_of(store.db.conn, month, tz, store.clock())


def run_ends(store: Store, month: Month) -> bool:
    """The run's last write: the month recorded billed, and no longer to be billed again, unless
    a step back during the run recorded it to be billed again (it took the run's mark away).
    One transaction, so that no step falls between the check and the record. Whether recorded."""
    with store.db.transaction():
        conn = store.db.conn
        if repo.state(conn, UNDER_WAY) != str(month):
            return False
        repo.BillingRepo(store.db, store.clock).put(repo.LAST_BILLED, str(month))
        billed_again(conn, month)
        conn.execute("DELETE FROM billing_state WHERE key = ?", (UNDER_WAY,))
    return True


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
        (REBILL_PREFIX, REBILL_PREFIX[:-1] + "0"),
    )
    said = {}
    for key, value in rows:
        month = Month.parse(key.removeprefix(REBILL_PREFIX))
        at, seconds = (float(v) for v in value.split())
        said[str(month)] = (
            f"to be billed again: the clock stepped back {seconds:.0f} s into it on"
            f" {datetime.fromtimestamp(at, tz):%Y-%m-%d %H:%M}; the scheduled run after"
            f" {month.next().start(tz):%Y-%m-%d %H:%M} writes it again and mails the files that changed"
        )
    return said
