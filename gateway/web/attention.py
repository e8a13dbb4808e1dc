"""The dashboard's "Needing attention": the daemon's troubles, as `smsgw status` and /healthz count them.

Apart from `gateway.web.pages` because these read the daemon's own state (the store's failed writes,
state_dir's disk, the WAL, the status file's workers, the queue) rather than an account's users and
use, and so that the pages module stays a size one can read through.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from billing_reports.failedjobs import failures, unkept, words
from gateway.adminrules import age
from gateway.cli.status import QUEUE_STUCK_SECONDS, STATUS_STALE_SECONDS
from gateway.statusfile import size_words
from gateway.store.admin import QUIET_HELD
from gateway.store.trouble import disk_space


@dataclass(frozen=True, slots=True)
class Trouble:
    """One trouble of the daemon that `smsgw status` counts (exit 1) and /healthz answers 503 for, as
    the dashboard's "Needing attention" says it: what is wrong and what to do."""

    key: str  # the paragraph's id
    said: str
    todo: str


def daemon_troubles(
    web: Any, status: dict[str, Any] | None, now: float, oldest_due: float | None
) -> list[Trouble]:
    """The troubles `smsgw status` reads (`gateway.cli.status.status_exit`), for the operator's dashboard.

    It said "Nothing." while a full disk refused every mail with 452. The store's failed writes,
    state_dir's free space and a reader's pin on the WAL are read in memory, as /healthz reads them;
    the lock another process holds and the workers from this daemon's status file (the housekeeping
    worker's, written every 2 s), which is also what status reads; a failing billing run or purge
    from the database, as status reads it. A file of another process (the one
    before a restart) says nothing of this one. `oldest_due`: when the SMS due longest was accepted."""
    when = web.env.filters["when"]
    out: list[Trouble] = []
    if trouble := web.store.db.trouble():
        out.append(
            Trouble(
                "store",
                f"The database refuses writes since {when(now - float(trouble['for_seconds']))}:"
                f" {' '.join(str(trouble['error']).split())} ({trouble['failures']} failed write(s), the"
                f" last {float(trouble['last_seconds_ago']):.0f} s ago). New mail is refused meanwhile"
                " (452 when the disk is full).",
                "Free space in state_dir if it is full, or see the log for the error; this stays until"
                " no write has failed for 30 s.",
            )
        )
    state_dir = web.config.state_dir
    if (disk := disk_space(state_dir).look()) is not None and disk["low"]:
        out.append(
            Trouble(
                "disk",
                f"state_dir {state_dir} is nearly full: {size_words(disk['free_bytes'])} free of"
                f" {size_words(disk['total_bytes'])}, under {size_words(disk['floor_bytes'])}. Once it is"
                " full, new mail is refused (452).",
                "Free space there (old logs, backups) or grow the filesystem.",
            )
        )
    if pinned := web.store.db.wal_pinned():
        out.append(
            Trouble(
                "wal",
                f"The database's WAL is pinned since {when(now - float(pinned['for_seconds']))}:"
                f" {pinned['wal_bytes'] / 1e6:.1f} MB and growing with every mail, as a reader holds an"
                " old snapshot.",
                "End it (an sqlite3 shell left in a transaction, a long report or backup): the next"
                " checkpoint cuts the WAL back.",
            )
        )
    ours = status is not None and status.get("pid") == os.getpid()
    if ours and status is not None:
        updated = float(status.get("updated_at", 0))
        if now - updated > STATUS_STALE_SECONDS:
            out.append(
                Trouble(
                    "status-file",
                    f"The daemon last wrote its status file {when(updated)} ({age(now - updated)} ago):"
                    " `smsgw status` says it is not answering, and what the file tells is old.",
                    "The housekeeping worker is stuck or failing: the log says why; a restart of the"
                    " daemon may be needed.",
                )
            )
        if locked := status.get("store_locked"):
            out.append(
                Trouble(
                    "store-locked",
                    "The database is locked by another process since"
                    f" {when(updated - float(locked['for_seconds']))}: new mail gets 451 meanwhile.",
                    "End the sqlite3 shell or the backup holding it.",
                )
            )
        for name, worker in sorted(status.get("workers", {}).items()):
            if worker.get("state") in ("running", "starting"):
                continue
            error = worker.get("last_error")
            last = f"; its last error {when(worker.get('last_error_at'))}: {error}" if error else ""
            out.append(
                Trouble(
                    f"worker-{name}",
                    f"Worker {name} is {worker.get('state')} (restarts {worker.get('restarts', 0)}){last}."
                    " What it does waits meanwhile.",
                    "The log says why; `smsgw status` shows every worker.",
                )
            )
    # A billing run or purge failing (`billing_reports.failures`): status exits 1 for it, and the list
    # said "Nothing." meanwhile. In status's words; gone once a run of the same job succeeds.
    # One the database could not keep (held in memory, `failedjobs.unkept`) too, as status and /healthz.
    for kind, failure in {**failures(web.store.db.conn), **unkept(web.store)}.items():
        out.append(
            Trouble(
                f"job-{kind}",
                f"The {words(kind, failure, ZoneInfo(web.config.gateway.timezone))}.",
                "Once the next run succeeds this goes; the billing page and `smsgw status` say it too.",
            )
        )
    if oldest_due is not None and now - oldest_due > QUEUE_STUCK_SECONDS:
        out.append(
            Trouble(
                "queue",
                f"An SMS due has waited {age(now - oldest_due)} since {when(oldest_due)}: the queue does"
                " not move.",
                "See the links below (down, or an SMSC throttling every submit); `smsgw status` says more.",
            )
        )
    return out


def quiet_held_parts(conn: sqlite3.Connection, now: float) -> int:
    """The parts waiting that are held for quiet hours at `now` (`AdminRepo.quiet_held`'s count): a
    link's line told them as waiting for it."""
    return int(conn.execute(f"SELECT COUNT(*) FROM parts p WHERE {QUIET_HELD}", (now,)).fetchone()[0])
