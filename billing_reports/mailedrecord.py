"""The month's record on disk of the mails its run queued (`<month>/_mailed`): the marks
(`repo.mailed_key`'s values) the database holds, written once the mails are queued.

A restore over a database that could not be read takes a month billed since the backup from its
files on disk (`billing_reports.restoreblind`). Whole files alone say a run wrote the month, not that
anyone was mailed it: a hand run without `--send`, a scheduled run that wrote the files and stopped
before queueing the mails, a run of the month so far. Taken as mailed, nobody was ever sent that
month's bill. So the step that queues the mails leaves this record beside the files, after the
transactions that queue them are committed: a crash in between leaves the mails queued and no
record, and the month is billed and mailed again after such a restore (mailed twice, never not at all).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from billing_reports import repo
from billing_reports.files import fsync_dir, write_atomic
from billing_reports.mailed import regular_bytes
from billing_reports.monthly import Month
from gateway.store.db import Store

RECORD = "_mailed"  # no account's file: theirs end in `.txt`, and a leading "_" is escaped
_HEAD = b"# the billing mails queued for this month's files: <account id or summary>\t<sha256> <unix time>\n"


def marks(conn: sqlite3.Connection, month: Month) -> dict[str, str]:
    """The month's marks in the database, by `repo.mailed_key`'s `what` (an account's id, "summary")."""
    prefix = repo.mailed_key(month, "")
    rows = conn.execute(
        "SELECT key, value FROM billing_state WHERE key >= ? AND key < ?", (prefix, prefix[:-1] + "0")
    )
    return {str(key)[len(prefix) :]: str(value) for key, value in rows}


def write(directory: Path, found: dict[str, str]) -> None:
    """The record of `found` (`marks`), in place of the one before; nothing when no mail was queued."""
    if not found:
        return
    lines = [f"{what}\t{mark}\n".encode() for what, mark in sorted(found.items())]
    write_atomic(directory / RECORD, [_HEAD, *lines])
    fsync_dir(directory)


def keep(conn: sqlite3.Connection, directory: Path, month: Month) -> None:
    """The record of the month's marks as the database holds them now (the mails committed)."""
    write(directory, marks(conn, month))


async def keep_from_loop(store: Store, directory: Path, month: Month) -> None:
    """`keep` from the daemon: the marks read on the loop, the file written in a worker thread."""
    found = marks(store.db.conn, month)
    await asyncio.to_thread(write, directory, found)


def read(directory: Path) -> dict[str, str] | None:
    """The marks the record holds, or None: no record, no regular file, or none readable in it."""
    data = regular_bytes(directory / RECORD)
    if data is None:
        return None
    found = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        what, tab, mark = line.partition("\t")
        if tab and not line.startswith("#") and mark.strip():
            found[what] = mark
    return found or None
