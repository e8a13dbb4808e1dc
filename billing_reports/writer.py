"""Writing a month's billing files: one per account plus the operator's summary, each atomically.

A file is written to a temporary name in its directory, fsynced, renamed over the old one and the
directory fsynced: a reader (or the mailer) sees the old file or the new one, never a part. Every
run renders from the store again, so a re-run over unchanged rows rewrites the same bytes; one over
changed rows of a month already mailed keeps the mailed file aside first (`billing_reports.mailed`), each
version mailed in a copy of its own. A month is many files: its directory holds `files.INCOMPLETE`
from the start of a run of the whole month until its summary is written, so that a run stopped
between two files is seen as such and done again. The rows are read on a connection of our own
(`repo.open_reader`), in whatever thread runs this.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports import repo
from billing_reports.files import hold_month, mark_complete, mark_incomplete, write_atomic
from billing_reports.mailed import (
    disk_mark,
    ends_with,
    file_sha256,
    keep_mailed,
    open_regular,
    settle_mailed,
)
from billing_reports.monthly import STATUSES, Month, lines
from billing_reports.render import Header, Rendering, Sum, clean, pln, shown_account
from gateway.adminrules import SUMMARY_LABELS

SUMMARY = "_summary.txt"  # account files are `<name>.txt`; a name starting with "_" is escaped
UNCLAIMED = "(premium MO without a service)"  # the summary's line for premium MOs no service claimed
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._@+")
# A file name holds at most 255 bytes, and the temporary name a file is written under adds a dot
# and ".<pid>.tmp" (13 bytes at most, pids going up to 4194304): a longer escaped name is cut to
# this, and a hash of the whole name keeps it apart from every other. A Polish letter is escaped
# in 6 bytes, an emoji in 12, so a name of 43 "ż" once stopped the billing of every account. Every
# name that could be written before keeps its file (and its earlier months stay found under it).
MAX_FILE_NAME = 255 - len(".") - len(".4194304.tmp")
_CUT = "~"  # never in an escaped name, so a cut name cannot equal one that was not cut
_HASH_CHARS = 12


@dataclass(frozen=True)
class AccountFile:
    account_id: int | None
    account: str
    path: Path
    sums: Sum
    sha256: str

    @property
    def shown(self) -> str:
        """Its name as its file's header and the summary print it (`render.shown_account`): the mails
        about it name it so too, or two accounts printed alike read as one in a mail program."""
        return shown_account(self.account, self.account_id)


@dataclass(frozen=True)
class NotWritten:
    """An account whose file could not be written (a full disk, say): the others still are."""

    account_id: int
    account: str
    path: Path
    error: OSError

    def line(self) -> str:
        return f"{self.account}: {self.path.name}: {self.error.strerror or self.error}"


@dataclass(frozen=True)
class MonthFiles:
    month: Month
    accounts: list[AccountFile]
    summary: Path | None  # None when the month has none yet and one account was run, or some failed
    failed: list[NotWritten] = field(default_factory=list)
    only: str | None = None  # the account a run was for (the summary written with it is not mailed)
    # A file written with other bytes than the ones mailed, and where the mailed one is kept.
    kept: dict[Path, Path] = field(default_factory=dict)
    redone: bool = False  # a run before this one was stopped partway through the month (`INCOMPLETE`)
    unclaimed: bool = False  # the summary lists premium MOs no service claimed (the operator's money)


class MonthIncomplete(OSError):
    """Some accounts' files could not be written; the others were (`files`), the summary was not.

    An OSError, as a failure to write the files always was, with the month's directory as its file.
    """

    def __init__(self, files: MonthFiles, directory: Path, *, summary: bool = True) -> None:
        which = "; ".join(f.line() for f in files.failed)
        text = f"{len(files.failed)} account file(s) not written ({which})"
        if files.accounts:
            text += f"; the other {len(files.accounts)} were written"
        if summary:
            text += "; the summary is written once every account's file is"
        super().__init__(files.failed[0].error.errno, text, str(directory))
        self.files = files


def file_name(account: str) -> str:
    """The account's file name: its name where that is safe, `%XX` escapes elsewhere.

    Cut to MAX_FILE_NAME bytes (whole characters kept) and marked with a hash of the whole name
    when longer: every name gives a file that can be written, and the names of the files already
    written for shorter ones stay as they were.
    """
    escaped = [c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in account]
    if escaped and escaped[0] in ("_", "."):
        escaped[0] = f"%{ord(escaped[0]):02X}"
    name = "".join(escaped)
    if len(name) + len(".txt") <= MAX_FILE_NAME:
        return f"{name}.txt"
    room = MAX_FILE_NAME - len(f"{_CUT}{'0' * _HASH_CHARS}.txt")
    kept = ""
    for piece in escaped:
        if len(kept) + len(piece) > room:
            break
        kept += piece
    digest = hashlib.sha256(account.encode()).hexdigest()[:_HASH_CHARS]
    return f"{kept}{_CUT}{digest}.txt"


def month_dir(state_dir: Path, month: Month, billing_dir: Path | None = None) -> Path:
    """The month's directory under `billing_dir` (`Config.billing_dir`, from `[gateway] billing_dir`);
    without one, under `<state_dir>/billing`, where the files were before the key existed."""
    return (state_dir / "billing" if billing_dir is None else billing_dir) / str(month)


def months(billing_dir: Path) -> list[Month]:
    """The months that have a directory of files, oldest first. Only the canonical spelling counts:
    billing_dir may be shared with other things (or be the state directory itself)."""
    found = []
    for entry in os.listdir(billing_dir) if billing_dir.is_dir() else ():
        try:
            month = Month.parse(entry)
        except ValueError:
            continue
        if str(month) == entry and (billing_dir / entry).is_dir():
            found.append(month)
    return sorted(found, key=lambda m: (m.year, m.month))


def purge_note(conn: sqlite3.Connection, month: Month, tz: ZoneInfo) -> tuple[str, ...]:
    """Say so when the retention purge (R-2.5) has deleted detail rows of this month."""
    value = repo.state(conn, repo.PURGED_BEFORE)
    start, end = month.bounds(tz)
    if value is None or float(value) <= start:
        return ()
    cutoff = datetime.fromtimestamp(float(value), tz)
    until = "the whole month" if float(value) >= end else f"{cutoff:%Y-%m-%d %H:%M}"
    return (
        f"detail rows up to {until} were deleted by the retention purge: MT, MO-reply and"
        " premium-answer lines of that time are missing below; premium-MO lines and their money are kept,"
        " and the usage counter above still counts every accepted part",
    )


def _written_since(path: Path, notes: tuple[str, ...]) -> bool:
    """Whether the file already says the purge's note as it stands: written from the rows left now
    (by a run the admin stopped partway, or a run again), not an archive of rows since deleted. Such
    files were taken for archives: the month a Ctrl-C left incomplete could never be written whole."""
    if not notes:
        return False
    said = f"# note\t{clean(notes[0])}\n".encode()
    with open_regular(path) as f:  # a FIFO in the file's place held a plain read forever
        try:
            return f is not None and said in f.read(16384)
        except OSError:
            return False


class ArchiveKept(Exception):
    """The month's files were written while its detail rows still existed: they are the record."""


def write_month(
    db_path: Path,
    state_dir: Path,
    month: Month,
    tz: ZoneInfo,
    *,
    account: str | None = None,
    keep_going: bool = False,
    billing_dir: Path | None = None,
) -> MonthFiles:
    """Render and write the month's files (and, for all accounts, the summary); return what was written.

    They go under `billing_dir` (`Config.billing_dir`); without it, `<state_dir>/billing`, the
    directory before the key existed.

    An account whose file cannot be written does not stop the others: it is listed in `failed`,
    and the summary, which would lack it, is not written. Unless `keep_going`, MonthIncomplete
    (an OSError) then says so once the others are written.

    One account of a month that has its summary is written with the summary: a summary left as it
    was would give that account the totals and checksum of its file before (the operator's page and
    the account's file disagreeing). Every account is rendered for it from the same snapshot, and
    another account's file is rewritten only when its rows changed since (its bytes would differ).
    """
    conn = repo.open_reader(db_path)
    held = None
    try:
        conn.execute("BEGIN")  # one snapshot: every file and the summary see the same rows
        end = month.bounds(tz)[1]
        directory = month_dir(state_dir, month, billing_dir)
        with_summary = account is None or (directory / SUMMARY).exists()
        chosen = repo.accounts(conn, end, None if with_summary else account)
        if account is not None and account not in (name for _id, name in chosen):
            raise LookupError(f"no account named {account!r} existed in {month}")
        notes = purge_note(conn, month, tz)
        kept = [directory / file_name(name) for _id, name in chosen if (directory / file_name(name)).exists()]
        kept = [path for path in kept if not _written_since(path, notes)]
        if notes and kept:
            # files are kept. One written before the purge is complete; a new one would not be.
            named = ", ".join(str(p) for p in kept[:3]) + (
                f" and {len(kept) - 3} more" if len(kept) > 3 else ""
            )
            raise ArchiveKept(  # a few named: 1,528 paths made one line of 79 KB
                f"{named}: written before the retention purge deleted detail rows"
                f" of {month}; kept as they are (move them away first to write the shorter ones)"
            )
        # The month is whole once its summary is written; until then its directory says it is not.
        # Written first, through the checks of the directory (`files.safe_dir`): a directory they
        # refuse stops the run here, before any account's file.
        held = hold_month(directory, str(month))  # made here, as the files were: not for a refused run
        redone = mark_incomplete(directory, str(month)) if with_summary else False
        summed = []  # every account of the summary
        written = []  # the files written
        failed = []
        kept: dict[Path, Path] = {}
        clock_cache: dict[int, tuple[str, int]] = {}
        dirs = [d for d in directory.glob("mailed*") if d.is_dir()]  # the copies kept so far
        # A month recorded billed had its files mailed. One whose mark is lost (a restore over a database
        # that could not be read) keeps its whole file on disk as the one mailed all the same.
        billed = (last := repo.state(conn, repo.LAST_BILLED)) is not None and last >= str(month)
        for account_id, name in chosen:
            usage = repo.usage_parts(conn, account_id, str(month))
            header = Header(name, month, tz, notes, usage, account_id)
            rendering = Rendering(header, lines(conn, account_id, month, tz), clock_cache)
            path = directory / file_name(name)
            chunks: Iterable[bytes] = rendering.chunks()
            if account is not None and name != account:  # for the summary: written if it changed
                chunks = [b"".join(chunks)]
            mark = repo.state(conn, repo.mailed_key(month, account_id))
            if mark is None and billed:
                mark = disk_mark(path)
            try:
                if account is None or name == account or not ends_with(path, rendering.totals.sha256):
                    made = keep_mailed(path, mark, tz, ends_with, dirs)
                    write_atomic(path, chunks)
                    written.append(path)
                    settle_mailed(path, mark, rendering.totals.sha256, made, tz, kept, ends_with, dirs)
            except OSError as exc:
                failed.append(NotWritten(account_id, name, path, exc))
                continue
            summed.append(AccountFile(account_id, name, path, rendering.totals.all, rendering.totals.sha256))
        done = [f for f in summed if f.path in written]
        summary = None
        if failed:
            conn.execute("COMMIT")
            files = MonthFiles(month, done, None, failed, account, kept, redone)
            if keep_going:
                return files
            raise MonthIncomplete(files, directory, summary=with_summary)
        listed = 0  # the summary's lines of premium MOs no service claimed
        if with_summary:
            unclaimed = Sum()
            for line in lines(conn, None, month, tz):
                unclaimed.add(line)
                listed += 1
            # No client to pay it to: the operator keeps it. Counted, the total's commission was
            # more than the accounts' and read as payouts it overstated them.
            unclaimed.commission = 0
            summary = directory / SUMMARY
            data = render_summary(month, tz, summed, unclaimed if listed else None, notes).encode("utf-8")
            mark = repo.state(conn, repo.mailed_key(month, "summary"))
            if mark is None and billed:
                mark = disk_mark(summary, summary=True)
            made = keep_mailed(summary, mark, tz, file_sha256, dirs)
            write_atomic(summary, [data])
            sha = hashlib.sha256(data).hexdigest()
            settle_mailed(summary, mark, sha, made, tz, kept, file_sha256, dirs)
            mark_complete(directory)
        conn.execute("COMMIT")
        return MonthFiles(month, done, summary, only=account, kept=kept, redone=redone, unclaimed=listed > 0)
    finally:
        conn.close()
        if held is not None:
            os.close(held)


def render_summary(
    month: Month, tz: ZoneInfo, files: list[AccountFile], unclaimed: Sum | None, notes: tuple[str, ...]
) -> str:
    """The operator's one page: a line per account with its totals and its file's checksum, and one
    for the premium MOs of no service when there were any (also when only corrections moved some:
    their sums may be negative or nothing, and the total is still the sum of the lines above it)."""
    start, end = month.start(tz), month.next().start(tz)
    rows = [
        "# smsgw billing summary\tlayout 1",
        f"# month\t{month}",
        f"# period\t{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}\t{tz.key}",
        *(f"# note\t{clean(n)}" for n in notes),
        "\t".join(("account", "sms", "parts", *STATUSES, "price_pln", "commission_pln", "file_sha256")),
    ]
    total = Sum()

    def row(name: str, s: Sum, sha: str) -> str:
        counts = "\t".join(str(s.by_status[k]) for k in STATUSES)
        return f"{name}\t{s.sms}\t{s.parts}\t{counts}\t{pln(s.price)}\t{pln(s.commission)}\t{sha}"

    for f in files:
        rows.append(row(summary_name(f.account, f.account_id), f.sums, f.sha256))
        _merge(total, f.sums)
    if unclaimed is not None:
        rows.append(row(UNCLAIMED, unclaimed, "-"))
        _merge(total, unclaimed)
    rows.append(row("total", total, "-"))
    body = "\n".join(rows) + "\n"
    return body + f"end\t{len(files)}\tsha256:{hashlib.sha256(body.encode('utf-8')).hexdigest()}\n"


def summary_name(account: str, account_id: int | None = None) -> str:
    """An account's name as its summary line starts: never like a line of the summary's own. A name
    that starts with `#` (a header line, which scripts skip) or `'`, or that is one of the summary's
    words (`account`, `total`, `end`, the line of premium MOs no service claimed; case aside), gets a
    leading `'` as `inert` gives one that starts like a formula. So a `'` at the start of the column
    is always the gateway's, and dropping it gives the name: `total` is `'total`, an account `'total`
    is `''total`. New accounts cannot take such names (`gateway.adminrules.account_name_problem`);
    these are accounts made before. So are names that do not print as themselves, which have their
    id after them (`render.shown_account`: `demo~7` for a `\u200bdemo` beside `demo`)."""
    name = shown_account(account, account_id)
    if name[:1] in ("#", "'") or name.casefold() in SUMMARY_LABELS:
        return f"'{name}"
    return clean(name)


def _merge(into: Sum, s: Sum) -> None:
    into.sms += s.sms
    into.parts += s.parts
    into.price += s.price
    into.commission += s.commission
    for k in STATUSES:
        into.by_status[k] += s.by_status[k]
