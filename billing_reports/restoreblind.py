"""The months billed after the backup when `smsgw restore` can carry nothing from the database it
replaces (damaged, missing, unreadable): their files on disk are the record.

A restore over a database that could still be read takes its billing state (`billing_reports.restorecarry`).
Over one that could not, the backup's billing state stood: the month billed and mailed since the
backup was billed again at the next start from the backup's rows (fewer SMS than the bill the account
holds), mailed a second time to every account and the operator as if it were the first, and its mailed
files were overwritten with no copy kept (their marks went with the database). So a month due after
the backup's `last_billed` whose files a run wrote whole (no `_incomplete` mark, a summary whose `end`
line checks, listing every account of the backup with the checksum of the account's whole file) is
taken as billed: `last_billed` moves to it, and each file gets the mark of a file mailed
(`mailed.disk_mark`), so that a month billed again by hand keeps the mailed file as its copy. The
first month not whole on disk, and every later one, is billed again as usual.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports import failedjobs, mtlate, repo
from billing_reports.files import is_incomplete
from billing_reports.mailed import disk_mark, whole_sha
from billing_reports.monthly import Month, due_months
from billing_reports.writer import SUMMARY, file_name, summary_name


def take_from_disk(copy: sqlite3.Connection, billing_dir: Path, tz: ZoneInfo, now: float) -> str | None:
    """Take the months billed after the backup whose files lie whole in `billing_dir` as billed in
    `copy` (not committed: the caller commits); what was taken, said for the restore's line."""
    table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'billing_state'"
    if copy.execute(table).fetchone() is None:  # a backup from before the billing state
        return None
    last = repo.state(copy, repo.LAST_BILLED)
    due = due_months(
        Month.parse(last) if last else None, now, tz, repo.installed_at(copy), repo.first_use(copy)
    )
    taken: list[Month] = []
    for month in due:
        marks = _whole(copy, billing_dir / str(month), month, tz)
        if marks is None:
            break
        _take(copy, month, tz, marks)
        taken.append(month)
    stop = due[len(taken)] if len(due) > len(taken) else None
    said = []
    if taken:
        names = ", ".join(str(m) for m in taken)
        said.append(
            # No path: the line goes into the audit trail too, shown in the panel (`restorecarry._plain`).
            f"the billing of {names} taken as done from the files in billing_dir, which stand as"
            f" mailed (not billed or mailed again; `smsgw billing run --month {taken[-1]} --send --again`"
            " bills a month again and mails it as a correction)"
        )
    if stop is not None and (billing_dir / str(stop)).is_dir():
        said.append(f"the files of {stop} on disk are not whole: it is billed again at the next start")
    return "; ".join(said) or None


def _whole(copy: sqlite3.Connection, directory: Path, month: Month, tz: ZoneInfo) -> dict[str, str] | None:
    """The marks of the month's files (by `repo.mailed_key`'s `what`) when a run wrote them all whole
    for the backup's accounts; else None."""
    summary = directory / SUMMARY
    if not directory.is_dir() or is_incomplete(directory) or whole_sha(summary) is None:
        return None
    listed = _listed(summary)
    marks: dict[str, str] = {}
    for account_id, name in repo.accounts(copy, month.bounds(tz)[1]):
        path = directory / file_name(name)
        sha = whole_sha(path)
        mark = disk_mark(path)
        if sha is None or mark is None or listed.get(summary_name(name)) != sha:
            return None
        marks[str(account_id)] = mark
    if (mark := disk_mark(summary, summary=True)) is None:
        return None
    marks["summary"] = mark
    return marks


def _listed(summary: Path) -> dict[str, str]:
    """The summary's accounts: their names as it spells them, and their files' checksums."""
    found = {}
    lines = summary.read_bytes().decode("utf-8", errors="replace").splitlines()
    header = next((i for i, line in enumerate(lines) if line.startswith("account\t")), len(lines))
    for line in lines[header + 1 : -1]:
        cells = line.split("\t")
        if len(cells) > 2:
            found[cells[0]] = cells[-1]
    return found


def _take(copy: sqlite3.Connection, month: Month, tz: ZoneInfo, marks: dict[str, str]) -> None:
    """The month recorded billed, its files mailed, its MTs billed as of its summary's time (later
    changes are corrections, `mtlate`), and a failure to bill it over."""
    copy.executemany(
        "INSERT INTO billing_state (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(repo.mailed_key(month, what), mark) for what, mark in marks.items()]
        + [(repo.LAST_BILLED, str(month))],
    )
    mtlate.record_as_of(copy, month, tz, float(repo.mark_parts(marks["summary"])[1] or 0))
    failure = failedjobs.failures(copy).get("billing", {})
    if failure.get("month") and str(failure["month"]) <= str(month):
        copy.execute("DELETE FROM billing_state WHERE key = ?", (failedjobs.key("billing"),))
