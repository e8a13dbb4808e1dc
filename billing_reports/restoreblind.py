"""The months billed after the backup when `smsgw restore` can carry nothing from the database it
replaces (damaged, missing, unreadable): their files on disk are the record.

A restore over a database that could still be read takes its billing state (`billing_reports.restorecarry`).
Over one that could not, the backup's billing state stood: the month billed and mailed since the
backup was billed again at the next start from the backup's rows (fewer SMS than the bill the account
holds), mailed a second time to every account and the operator as if it were the first, and its mailed
files were overwritten with no copy kept (their marks went with the database). So a month due after
the backup's `last_billed` whose files a run wrote whole (no `_incomplete` mark, a summary whose `end`
line checks, listing every account of the backup with the checksum of the account's whole file) is
taken as billed: `last_billed` moves to it, and each file gets the mark of a file mailed, so that a
month billed again by hand keeps the mailed file as its copy. The first month not taken, and every
later one (`last_billed` cannot pass it), is billed again at the next start; the files each one's own
record names as mailed keep their marks all the same, and are not mailed again. Stopping the reading
of records at the first month not taken (moved away from billing_dir, a run by hand killed while it
wrote) mailed every later month a second time, unsaid, whole files and record or not. What the next
start does with each month billed again is said.

An account of the backup removed (idle: one with a bill or traffic cannot be) before the run that
wrote the month had no file, and its whole summary does not name it: no file is missing.

Whole files say a run wrote them, not that anyone was mailed them (a hand run without `--send`, a
run stopped before it queued the mails, a run of the month so far). So a month is taken by the
record its mails were queued (`mailedrecord`), the marks taken from it, and its summary mailed after
the month ended. No record does not say nobody was mailed, though: releases before 0.2.39 wrote
none, and a month they mailed whose database was lost before this release's daemon recorded it was
billed again from the backup's older rows and mailed a second time, the files mailed written over.
Whole files written after the month ended with no record are taken all the same, marked from their
bytes, kept as mailed copies, and said to be either (only the operator can tell), with the command
that mails them; a run of the month so far (written before it ended; `--send` refuses such a month)
is billed and mailed at the next start. A month not taken whose record says a file was mailed
keeps that file as its mailed copy (`mailed-*/`) before the next start writes it again and mails it.

A file with a `queuing` line in the record (a run killed between committing its mails and
recording them) is taken as mailed, with the mark the line names, and the line says its mails may
not have been queued, rather than mailing it a second time. A file with neither a mark nor such a
line was not mailed: its month is billed again at the next start, and mails it; the files of that
month the record names as mailed after the month ended keep their marks, and are not mailed again,
also when the month's files are not whole or were written before the month ended.
And a mark says the mails were queued, not that the relay took them (lost with the database before
it did, they never went): the line says that too, with the command that mails a month again (named
once, in one meaning, `mail_again`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports import failedjobs, mailedrecord, mtlate, repo, takenunrecorded
from billing_reports.files import is_incomplete
from billing_reports.mailed import ends_with, file_sha256, keep_mailed, regular_bytes, whole_sha
from billing_reports.mailedrecord import QUEUING, RECORD
from billing_reports.monthly import Month, due_months
from billing_reports.render import shown_account
from billing_reports.writer import SUMMARY, file_name, summary_name


def take_from_disk(copy: sqlite3.Connection, billing_dir: Path, tz: ZoneInfo, now: float) -> str | None:
    """Take the months billed after the backup whose files lie whole in `billing_dir`, their mails
    recorded queued, as billed in `copy` (not committed: the caller commits); what was taken, said
    for the restore's line."""
    table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'billing_state'"
    if copy.execute(table).fetchone() is None:  # a backup from before the billing state
        return None
    last = repo.state(copy, repo.LAST_BILLED)
    due = due_months(
        Month.parse(last) if last else None, now, tz, repo.installed_at(copy), repo.first_use(copy)
    )
    taken: list[Month] = []
    unrecorded: list[str] = []  # the lines of the months taken with no record
    again: list[tuple[Month, str, dict[str, str]]] = []  # billed again: why, the marks carried
    for month in due:
        directory = billing_dir / str(month)
        marks, why = _whole(copy, directory, month, tz)
        if marks is not None and not again:
            _take(copy, month, tz, marks)
            if why != NO_RECORD:
                taken.append(month)
                continue
            takenunrecorded.note(copy, month, marks["summary"])  # said by `smsgw status` while it stands
            kept = _keep_mailed(copy, directory, month, tz, marks)
            copies = f" ({kept} file(s) kept in mailed-*/)" if kept else ""
            unrecorded.append(
                f"the files of {month} on disk {NO_RECORD}: taken as done, not mailed again{copies};"
                f" {mail_again(month)}"
            )
            continue
        # `last_billed` cannot pass a month billed again: a later month is billed again after it
        # too. Its own record still says which of its files were mailed; those keep their marks
        # (`_some`), whatever stopped the first month, and are not mailed again. A month with no
        # record keeps the marks of its files on disk all the same (`_unrecorded`).
        if marks is not None:
            why = f"are whole, but {again[0][0]} before it is billed again"
        again.append((month, why, _some(copy, directory, month, tz, marks)))
    said = []
    queued = _queued_lines(
        copy, billing_dir, [(m, None) for m in taken] + [(m, some) for m, _, some in again if some], tz
    )
    if taken:
        # The command once, in one meaning: the line on the record names it where there is one.
        how = "" if queued else f"; {mail_again(taken[-1])}"
        said.append(
            # No path: the line goes into the audit trail too, shown in the panel (`restorecarry._plain`).
            f"the billing of {', '.join(str(m) for m in taken)} taken as done from the files in"
            f" billing_dir, which stand as mailed (not billed or mailed again{how})"
        )
    return "; ".join(said + unrecorded + queued + _again_lines(copy, billing_dir, tz, again)) or None


def mail_again(month: Month | str) -> str:
    """The command that mails a month again, in the one meaning every line gives it."""
    command = f"`smsgw billing run --month {month} --send --again`"
    return f"{command} bills that month again and mails it, as a correction"


def _again_lines(
    copy: sqlite3.Connection, billing_dir: Path, tz: ZoneInfo, again: list[tuple[Month, str, dict[str, str]]]
) -> list[str]:
    """What the next start does with each month billed again: every one said, so that none is
    mailed a second time unsaid (a month moved away from billing_dir is billed as never mailed)."""
    said = []
    if gone := [m for m, _, _ in again if not (billing_dir / str(m)).is_dir()]:
        said.append(
            f"no files of {', '.join(str(m) for m in gone)} in billing_dir: each billed at the next start,"
            " its files written and mailed (a month mailed before and moved away is mailed again)"
        )
    for month, why, some in again:
        directory = billing_dir / str(month)
        if not directory.is_dir():
            continue
        bare = _claimed(directory) == {}
        kept = _keep_mailed(copy, directory, month, tz, _claimed(directory) or some)
        copies = f"; {kept} file(s) mailed kept in mailed-*/" if kept else ""
        if some and bare:
            what = f"its files written again, not mailed: they {NO_RECORD}{copies}; {mail_again(month)}"
        elif some and set(_files(copy, directory, month, tz)) <= set(some):
            what = f"its files written again, not mailed: the record names each as mailed{copies}"
        else:
            but = (
                f", but for {_named(copy, month, tz, some)}, which the record names as mailed" if some else ""
            )
            what = f"{_DUE}{but}{copies}"
        said.append(f"the files of {month} on disk {why}: it is billed again at the next start ({what})")
    return said


def _queued_lines(
    copy: sqlite3.Connection,
    billing_dir: Path,
    months: list[tuple[Month, dict[str, str] | None]],
    tz: ZoneInfo,
) -> list[str]:
    """What the record says of the months whose files it stands as mailed (all, or those named): a
    mark, that the mails were queued; a `queuing` line, that they may not have been."""
    said = []

    def held(found: dict[str, str] | None, only: dict[str, str] | None) -> dict[str, str]:
        return {w: m for w, m in (found or {}).items() if only is None or w in only}

    # The record is written when the mails are queued, not when the relay takes them: mails
    # queued and lost with the database before the relay took them never went, and nothing on
    # disk can tell (`mailedrecord`). Said, with the way to mail them, rather than guessed.
    if recorded := [m for m, only in months if held(mailedrecord.read(billing_dir / str(m)), only)]:
        said.append(
            f"the record says the mails of {', '.join(str(m) for m in recorded)} were queued, not that"
            " the relay took them: if the database was lost before it did, they never went (the relay's"
            f" log says which did; {mail_again(recorded[-1])})"
        )
    for month, only in months:
        directory = billing_dir / str(month)
        marked = mailedrecord.read(directory) or {}
        stood = {w: m for w, m in held(mailedrecord.intents(directory), only).items() if w not in marked}
        if not stood:
            continue
        since = min(float(repo.mark_parts(m)[1] or 0) for m in stood.values())
        said.append(
            f"a run of {month} stopped while it queued the mails of {_named(copy, month, tz, stood)}"
            f" (since {datetime.fromtimestamp(since, tz):%Y-%m-%d %H:%M}, {QUEUING} in {RECORD}): taken"
            " as mailed, not mailed twice, but they may not have been queued (the relay's log says which"
            f" went; {mail_again(month)})"
        )
    return said


def _named(copy: sqlite3.Connection, month: Month, tz: ZoneInfo, files: dict[str, str]) -> str:
    """The files (by `repo.mailed_key`'s `what`) as the restore's line names them."""
    names = {str(i): name for i, name in repo.accounts(copy, month.bounds(tz)[1])}
    said = [f"{shown_account(names[w], int(w))}'s file" for w in sorted(files) if w in names]
    return ", ".join([*said, *(["the summary"] if "summary" in files else [])])


def _claimed(directory: Path) -> dict[str, str]:
    """The files the record names as mailed, or as being queued by a run that stopped."""
    return {**mailedrecord.intents(directory), **(mailedrecord.read(directory) or {})}


def _some(
    copy: sqlite3.Connection, directory: Path, month: Month, tz: ZoneInfo, whole: dict[str, str] | None
) -> dict[str, str]:
    """The files of a month billed again that the record names as mailed after the month ended,
    marked so in `copy`: the run at the next start mails the others alone. Whatever the month is
    billed again for (files not whole: a run by hand killed while it wrote them, a full disk; not
    all mailed; a month before it billed again): a file mailed is not mailed twice. One mailed
    before the end (a clock stepped back) had part of the month: mailed again. `whole`: the marks
    `_whole` found, those of its files on disk for a month with no record (`_unrecorded`)."""
    end = month.bounds(tz)[1]
    claimed = _claimed(directory) or whole or {}
    some = {w: m for w, m in claimed.items() if (repo.mark_parts(m)[1] or 0) >= end}
    copy.executemany(
        "INSERT INTO billing_state (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(repo.mailed_key(month, what), mark) for what, mark in some.items()],
    )
    return some


_DUE = "its files written again and mailed"
NOT_WHOLE = "are not whole"
# No record does not say that nobody was mailed: releases before 0.2.39 wrote none, and their
# months lost with the database before this release's daemon recorded them (`record_marked`) were
# billed and mailed a second time from the backup's older rows, the files mailed written over.
NO_RECORD = (
    f"have no record that their mails were queued ({RECORD}): from a release before 0.2.39, which"
    " mailed them and kept none, or from a run without --send or one killed before it queued them,"
    " which mailed nothing"
)
SO_FAR = (
    f"were written before the month ended, with no record that their mails were queued ({RECORD}):"
    " a run of the month so far, never mailed"
)
NOT_ALL = f"were not all mailed ({RECORD})"
BEFORE_END = "were mailed before the month ended"


def _lines_of(listed: dict[str, str], name: str, account_id: int) -> set[str]:
    """The checksums the summary lists for an account: under its line as written now, and as releases
    before 0.2.43 wrote it (an account whose name does not print as itself had no `~id` after it; a
    month billed then, read as not whole, was billed and mailed again)."""
    lines = {summary_name(name, account_id), summary_name(name)}
    return {listed[line] for line in lines if line in listed}


def _whole(
    copy: sqlite3.Connection, directory: Path, month: Month, tz: ZoneInfo
) -> tuple[dict[str, str] | None, str]:
    """The marks of the month's files (by `repo.mailed_key`'s `what`) when a run wrote them all whole
    for the backup's accounts and recorded their mails queued after the month's end; else None and
    why not, for the restore's line."""
    summary = directory / SUMMARY
    if not directory.is_dir() or is_incomplete(directory) or whole_sha(summary) is None:
        return None, NOT_WHOLE
    listed = _listed(summary)
    for account_id, name in _accounts(copy, directory, month, tz):
        sha = whole_sha(directory / file_name(name))
        if sha is None or sha not in _lines_of(listed, name, account_id):
            return None, NOT_WHOLE
    record, intents = mailedrecord.read(directory) or {}, mailedrecord.intents(directory)
    if not record and not intents:
        return _unrecorded(copy, directory, month, tz)
    # A file with a `queuing` line alone: a run killed between its commit and its record (the
    # mark is the one its mails carry if they were committed); taken as mailed, and said so.
    marks = {what: record.get(what) or intents.get(what) for what in _files(copy, directory, month, tz)}
    if any(mark is None for mark in marks.values()):
        return None, NOT_ALL
    end = month.bounds(tz)[1]
    try:
        written = summary.stat().st_mtime
    except OSError:
        return None, NOT_WHOLE
    if written < end or (repo.mark_parts(marks["summary"] or "")[1] or 0) < end:
        return None, BEFORE_END
    return {what: mark for what, mark in marks.items() if mark is not None}, ""


def _unrecorded(
    copy: sqlite3.Connection, directory: Path, month: Month, tz: ZoneInfo
) -> tuple[dict[str, str] | None, str]:
    """The marks of a whole month's files with no record, from the files themselves (`ends_with`'s
    checksum for an account's, the summary's whole bytes) at the time the run wrote its summary; None
    for files written before the month ended (a run of the month so far: `--send` refuses such a
    month, so none was mailed). Taken as mailed, never mailed again unasked: a release before 0.2.39
    mailed them (the files on disk are the bills sent; the backup's rows are older), or nobody was
    sent them, and only the operator can tell which."""
    summary = directory / SUMMARY
    try:
        written = summary.stat().st_mtime
    except OSError:
        return None, NOT_WHOLE
    if written < month.bounds(tz)[1]:
        return None, SO_FAR
    data = regular_bytes(summary)
    marks = {
        str(i): whole_sha(directory / file_name(name)) for i, name in _accounts(copy, directory, month, tz)
    }
    marks["summary"] = None if data is None else hashlib.sha256(data).hexdigest()
    if any(sha is None for sha in marks.values()):
        return None, NOT_WHOLE
    return {what: f"{sha} {written:.0f}" for what, sha in marks.items()}, NO_RECORD


def _accounts(copy: sqlite3.Connection, directory: Path, month: Month, tz: ZoneInfo) -> list[tuple[int, str]]:
    """The backup's accounts of the month that the run which wrote its files had: not one removed
    between the backup and that run (no file, not in the whole summary, no SMS of the month in the
    backup). Removed idle, it had no file, and none is missing: the month stands whole."""
    start, end = month.bounds(tz)
    accounts = repo.accounts(copy, end)
    if whole_sha(directory / SUMMARY) is None:
        return accounts
    listed = _listed(directory / SUMMARY)
    sms = "SELECT 1 FROM messages WHERE account_id = ? AND created_at >= ? AND created_at < ? LIMIT 1"
    return [
        (i, name)
        for i, name in accounts
        if _lines_of(listed, name, i)
        or os.path.lexists(directory / file_name(name))
        or copy.execute(sms, (i, start, end)).fetchone() is not None
    ]


def _files(copy: sqlite3.Connection, directory: Path, month: Month, tz: ZoneInfo) -> list[str]:
    """The month's files by `repo.mailed_key`'s `what`: each account's id, and "summary"."""
    return [*(str(i) for i, _ in _accounts(copy, directory, month, tz)), "summary"]


def _keep_mailed(
    copy: sqlite3.Connection, directory: Path, month: Month, tz: ZoneInfo, record: dict[str, str]
) -> int:
    """Each file of a month that `record` says was mailed (its record, a file whose mails a run was
    queueing when it stopped included; or the marks of a month with no record, `_unrecorded`), kept
    as its mailed copy (`mailed.keep_mailed`): no mark in the database said so any more, and a run
    would write over it. How many were kept; a file that cannot be kept is left to the run."""
    if not directory.is_dir():
        return 0
    if not record:
        return 0
    dirs = [d for d in directory.glob("mailed*") if d.is_dir() and not d.is_symlink()]
    files = [
        (directory / file_name(name), str(i), ends_with)
        for i, name in repo.accounts(copy, month.bounds(tz)[1])
    ]
    kept = 0
    for path, what, is_it in [*files, (directory / SUMMARY, "summary", file_sha256)]:
        if (mark := record.get(what)) is None:
            continue
        with contextlib.suppress(OSError):
            kept += keep_mailed(path, mark, tz, is_it, dirs) is not None
    return kept


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
