"""The months a restore took as done from whole files with no record that their mails were queued
(`billing_reports.restoreblind`), for `smsgw status` and the panel's billing page.

Such a month was mailed by a release before 0.2.39 (which kept no record), or never mailed at all (a
run without `--send`, one killed before it queued the mails): nothing tells them apart, and only the
restore's own line said so, once, to whoever ran it. The restore writes a billing state key for each
(`note`), whose value is the summary's mark it wrote; the month is said while that mark stands: a
`billing run --month ... --send --again` that mails it again gives it a new one. The key outlives the
daemon's record of the month (`mailedrecord.record_marked`), which it writes from those very marks
at its next start, so the record on disk cannot tell it.
"""

from __future__ import annotations

import sqlite3

PREFIX = "taken_unrecorded/"


def note(conn: sqlite3.Connection, month: object, summary_mark: str) -> None:
    """Inside the restore's transaction: `month` was taken with no record, its summary marked so."""
    conn.execute(
        "INSERT INTO billing_state (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (f"{PREFIX}{month}", summary_mark),
    )


def holding(conn: sqlite3.Connection) -> list[str]:
    """The months taken with no record whose summary still has the mark the restore gave it."""
    rows = conn.execute(
        "SELECT t.key, t.value, m.value FROM billing_state t LEFT JOIN billing_state m"
        " ON m.key = 'mailed/' || substr(t.key, ?) || '/summary' WHERE t.key >= ? AND t.key < ?",
        (len(PREFIX) + 1, PREFIX, PREFIX[:-1] + "0"),
    )
    return sorted(str(key)[len(PREFIX) :] for key, taken, mark in rows if mark == taken)


def words(month: str) -> str:
    """The month's line, as the restore said it (`restoreblind.NO_RECORD`), and what ends it."""
    from billing_reports.restoreblind import mail_again

    return (
        f"{month} taken as done by a restore from its files on disk, which have no record that their"
        " mails were queued (_mailed): mailed by a release before 0.2.39, or never mailed;"
        f" {mail_again(month)}"
    )
