"""What `smsgw restore` takes over of the billing from the database it replaces (attached as `old`),
after the store's carries (`gateway.restorecarries`). Here because the billing state's keys are this
package's: the store keeps the key/value table (`billing_state`) and names none of them.

The billing files on disk are not restored with the database: a month billed after the backup lies
there written, and its mails went (or wait in the outbox). Restored as the backup had it, the billing
state said the month was not billed yet: the daemon's start billed it again, wrote its files again
and mailed every account and the operator a second time, and `billing run --send` took the mailed
files for never mailed. So the replaced database's billing state, the later of the same database,
takes the place of the backup's whole (a key it removed since is removed: a month billed again
after a clock step, a run that ended), and the billing mails it queued since come with it, sent or
not (one not sent yet goes once: else the marks said mailed a month whose mail never went). A month
not billed in the replaced database is not billed in the copy either, and is billed once, with the
SMS carried since the backup, when the daemon's run comes to it.

`purged_before` stays the backup's: it says what the retention purge deleted of the rows the database
holds, and the copy holds the backup's.
"""

from __future__ import annotations

import sqlite3

from billing_reports import mtlate, rebill, repo, takenunrecorded
from billing_reports.failedjobs import failures, key, short
from billing_reports.job import KIND
from billing_reports.repo import LAST_BILLED, mailed_key
from gateway.store.restorerows import in_both, shared_columns

# The keys that say which months were billed, which files mailed, and as of when (`mtlate`, `rebill`),
# and which a restore took as done with no record (`takenunrecorded`: said while the marks carried
# here stand, so it goes with them).
_KEYS = (LAST_BILLED, rebill.UNDER_WAY)
_PREFIXES = (
    mailed_key("", "")[:-1],
    mtlate.AS_OF_PREFIX,
    mtlate.RETRIED_PREFIX,
    rebill.REBILL_PREFIX,
    takenunrecorded.PREFIX,
)
_OWN = " OR ".join(
    [f"key = '{k}'" for k in _KEYS] + [f"key GLOB '{p}*'" for p in _PREFIXES]
)  # the constants above: no quote or glob character in them
_SAME_MAIL = "c.id = o.id AND c.kind = o.kind AND c.rcpt = o.rcpt AND c.created_at = o.created_at"


def carry(copy: sqlite3.Connection) -> str | None:
    """The replaced database's billing state in place of the backup's, and the billing mails queued
    since; the months billed since the backup and those mails, said for the restore's line."""
    if not in_both(copy, "billing_state"):  # a backup from before the billing state
        return None
    months = [
        str(r[0])
        for r in copy.execute(
            "SELECT DISTINCT substr(o.key, 8, 7) FROM old.billing_state o WHERE o.key GLOB 'mailed/*'"
            " AND NOT EXISTS (SELECT 1 FROM main.billing_state c WHERE c.key = o.key) ORDER BY 1"
        )
    ]
    last = [
        copy.execute(f"SELECT value FROM {db}.billing_state WHERE key = ?", (LAST_BILLED,)).fetchone()
        for db in ("main", "old")
    ]
    if last[1] is not None and (last[0] is None or last[1][0] > last[0][0]) and last[1][0] not in months:
        months.append(str(last[1][0]))
    copy.execute(f"DELETE FROM main.billing_state WHERE {_OWN}")
    copy.execute(
        f"INSERT INTO main.billing_state (key, value) SELECT key, value FROM old.billing_state WHERE {_OWN}"
    )
    mails = _carry_mails(copy)
    failed = _carry_failures(copy)
    if not months and not mails and not failed:
        return None
    billed = f"the billing of {', '.join(sorted(months))} done since (not billed again)" if months else ""
    queued = f"{mails} billing mails" if mails else ""
    kept = f"{'; '.join(failed)} (still said until a run succeeds)" if failed else ""
    return ", ".join(s for s in (billed, queued, kept) if s)


def _carry_failures(copy: sqlite3.Connection) -> list[str]:
    """The failed runs kept (`billing_reports.failures`) as the replaced database has them, in place
    of the backup's: restored as the backup had them, a run that failed since was forgotten (status
    said all was well until the next hourly run failed again), and one that failed before the backup
    and succeeded since was said again. A billing failure whose month the marks carried say billed
    (`billing run --send` by hand since) is over. The failures carried, said for the restore's line."""
    copy.execute(f"DELETE FROM main.billing_state WHERE key GLOB '{key('')}*'")
    said = []
    for kind, failure in failures(copy, "old").items():
        # `repo.billed`, not `last_billed` alone: `billing run --send` records the files mailed and
        # leaves `last_billed` to the scheduled run, so the failure of a month mailed by hand was kept.
        if kind == "billing" and failure.get("month") and repo.billed(copy, str(failure["month"])):
            continue
        copy.execute(
            "INSERT INTO main.billing_state (key, value) SELECT key, value FROM old.billing_state"
            " WHERE key = ?",
            (key(kind),),
        )
        said.append(short(kind, failure))
    return said


def _carry_mails(copy: sqlite3.Connection) -> int:
    """The billing mails the copy does not have (queued after the backup), each under its own id when
    the copy has it free, else a new one (another carried mail may hold it). One in both that was
    sent since is sent in the copy already (`restorecarry`)."""
    cols = [c for c in shared_columns(copy, "outbox") if c != "id"]
    rows = copy.execute(
        "SELECT o.id, EXISTS (SELECT 1 FROM main.outbox c WHERE c.id = o.id),"
        f" {', '.join('o.' + c for c in cols)}"
        f" FROM old.outbox o WHERE o.kind = ? AND NOT EXISTS (SELECT 1 FROM main.outbox c WHERE {_SAME_MAIL})"
        " ORDER BY o.id",
        (KIND,),
    ).fetchall()
    values = ", ".join("?" for _ in cols)
    for row in sorted(rows, key=lambda r: r[1]):  # those whose id is free first
        copy.execute(
            f"INSERT INTO main.outbox (id, {', '.join(cols)}) VALUES (?, {values})",
            (None if row[1] else row[0], *row[2:]),
        )
    return len(rows)
