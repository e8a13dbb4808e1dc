"""The month's record on disk of the mails its run queued (`<month>/_mailed`): the marks
(`repo.mailed_key`'s values) the database holds, written once the mails are queued.

A restore over a database that could not be read takes a month billed since the backup from its
files on disk (`billing_reports.restoreblind`). Whole files alone say a run wrote the month, not that
anyone was mailed it: a hand run without `--send`, a scheduled run that wrote the files and stopped
before queueing the mails, a run of the month so far. Taken as mailed, nobody was ever sent that
month's bill. So the step that queues the mails leaves this record beside the files.

The record and the database cannot change in one step. A record written only after the mails were
committed left, to a run killed in between, mails queued (and sent) and no record: restored over a
lost database, the month was billed and mailed a second time, the restore saying it was never
mailed. So a run writes (and syncs) a `queuing` line naming the file, its checksum, its process and
time just before each transaction that queues a file's mails (`intend`) and, once its transactions
are committed, the marks the database then holds in their place: killed in between, the lines
stay, and the restore takes those files as mailed and says that their mails may not have gone. A
line for the whole month, written before the first mail, took a run killed before it queued any
as having mailed every file (and `--send --account` as having mailed the others too): nobody got
the month's bill. Files the record names neither way were not mailed, and are mailed after it.

Two runs may queue a month's mails at once (the daemon's scheduled run and `billing run --send`):
each reads the marks and writes the record under `LOCK`, so that the one that writes last read the
other's commits too; read outside it, the slower one wrote its older view over the newer one.

Releases before 0.2.39 wrote no record: the months they mailed have only the database's marks, and a
restore over that database lost took them as never mailed, billed them again from the backup's rows
and mailed them a second time. So the daemon's billing job writes the record of each month whose
marks the database holds and whose directory has none (`record_marked`), before it bills; and
completes, from those marks, a record holding a `queuing` line left by a run gone, such as a
`--send --again` killed on a month those releases mailed: the line dropped if that run committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import structlog

from billing_reports import repo
from billing_reports.files import BILLING_FILE_MODE, fsync_dir, safe_dir, write_atomic
from billing_reports.mailed import regular_bytes
from billing_reports.monthly import Month
from billing_reports.writer import month_dir
from gateway.store.db import Store

log = structlog.get_logger(__name__)

RECORD = "_mailed"  # no account's file: theirs end in `.txt`, and a leading "_" is escaped
LOCK = "_mailed.lock"  # held while the record is read and written; left in place (a lock file removed
# while another run waits on it is no lock for the run after them)
QUEUING = "queuing"  # no account's id (digits) nor "summary"
_HEAD = (
    b"# the billing mails queued for this month's files: <account id or summary>\t<sha256> <unix time>;"
    b" queuing\t<account id or summary> <sha256> <pid> <unix time>: being queued\n"
)


def marks(conn: sqlite3.Connection, month: Month) -> dict[str, str]:
    """The month's marks in the database, by `repo.mailed_key`'s `what` (an account's id, "summary")."""
    prefix = repo.mailed_key(month, "")
    rows = conn.execute(
        "SELECT key, value FROM billing_state WHERE key >= ? AND key < ?", (prefix, prefix[:-1] + "0")
    )
    return {str(key)[len(prefix) :]: str(value) for key, value in rows}


@contextlib.contextmanager
def _held(directory: Path) -> Iterator[None]:
    """The record's lock, waited for: the other run holds it only while it reads and writes it."""
    safe_dir(directory)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(directory / LOCK, flags, BILLING_FILE_MODE)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device put in its place
            raise OSError(f"{directory / LOCK} is not a regular file")
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _lines(directory: Path) -> list[tuple[str, str]]:
    data = regular_bytes(directory / RECORD)
    if data is None:
        return []
    found = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        what, tab, mark = line.partition("\t")
        if tab and not line.startswith("#") and mark.strip():
            found.append((what, mark))
    return found


def _intent(token: str) -> tuple[str, str, int, float] | None:
    """A `queuing` line's file, checksum, process and time; None for one not of that form."""
    parts = token.split()
    if len(parts) != 4:
        return None
    try:
        return parts[0], parts[1], int(parts[2]), float(parts[3])
    except ValueError:
        return None


def _alive(token: str) -> bool:
    """Whether the run that wrote a `queuing` line still runs: a dead one's commits are all in the
    database the marks are read from, and its line says something only where they do not hold its
    mark (`_committed`). A pid taken again by another process keeps the line: the restore then says
    its mails may not have gone."""
    if (intent := _intent(token)) is None:
        return False
    pid = intent[2]
    if pid == os.getpid():
        return False  # this run's own line, done with
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _write(directory: Path, found: dict[str, str], queuing: list[str]) -> None:
    lines = [f"{what}\t{mark}\n".encode() for what, mark in sorted(found.items())]
    lines += [f"{QUEUING}\t{token}\n".encode() for token in queuing]
    if not lines and not (directory / RECORD).exists():
        return  # no mail queued: no record
    write_atomic(directory / RECORD, [_HEAD, *lines])
    fsync_dir(directory)


def intend(directory: Path, what: str, sha: str, at: float) -> None:
    """Just before a run commits the mails of one file (`what`: `repo.mailed_key`'s), its `queuing`
    line appended to the record and synced. Appended, not the record rewritten: a month of thousands
    of accounts writes one line a file. Another run's line stays, even a dead one's: only `keep`,
    which reads what that run committed, may drop it."""
    line = f"{QUEUING}\t{what} {sha} {os.getpid()} {at:.0f}\n".encode()
    with _held(directory):
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(directory / RECORD, flags, BILLING_FILE_MODE)
        try:
            size = os.fstat(fd).st_size
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{directory / RECORD} is not a regular file")
            if size == 0:
                line = _HEAD + line
            elif os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # a line cut short by a crash would swallow this one
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if size == 0:
            fsync_dir(directory)


def keep(conn: sqlite3.Connection, directory: Path, month: Month) -> None:
    """The record of the month's marks as the database holds them now (this run's mails committed),
    in place of this run's `queuing` line; another run's still running stays, and so does a dead
    run's whose mails the marks do not hold (killed before its commit), its file's older mark left
    out (`_settled`): dropped, a `--send --again` killed so lost its trace to the next run's record."""
    with _held(directory):
        found, tokens = marks(conn, month), [token for what, token in _lines(directory) if what == QUEUING]
        standing = {
            token: intent[0]
            for token in tokens
            if (intent := _dead(token)) is not None and not _committed(intent, found.get(intent[0]))
        }
        others = [token for token in tokens if _alive(token) or token in standing]
        _write(directory, {w: m for w, m in found.items() if w not in standing.values()}, others)


def _keep_reading(db_path: Path, directory: Path, month: Month) -> None:
    with contextlib.closing(repo.open_reader(db_path)) as conn:
        keep(conn, directory, month)


@contextlib.contextmanager
def queuing(
    conn: sqlite3.Connection, directory: Path, month: Month, at: float
) -> Iterator[Callable[[str, str], None]]:
    """Around the transactions that queue the month's mails (`billing run --send`): gives `intend`
    (a file's key and checksum) for each, then `keep`, also when the run fails partway (what it
    committed is recorded; its own error is said)."""
    try:
        yield lambda what, sha: intend(directory, what, sha, at)
    except BaseException:
        with contextlib.suppress(Exception):
            keep(conn, directory, month)
        raise
    keep(conn, directory, month)


async def keep_from_loop(store: Store, directory: Path, month: Month) -> None:
    """`keep` from the daemon, in a worker thread: the marks read under the lock on a read-only
    connection of its own (the loop's connection stays the loop's), which sees every commit."""
    await asyncio.to_thread(_keep_reading, store.path, directory, month)


@contextlib.asynccontextmanager
async def queuing_from_loop(
    store: Store, directory: Path, month: Month, at: float
) -> AsyncIterator[Callable[[str, str], Awaitable[None]]]:
    """`queuing` for the daemon's scheduled run, `intend` in a worker thread (it syncs). Stopped
    (cancelled), its lines stay: the next run drops them once this process is gone, and records
    what it committed."""
    try:
        yield lambda what, sha: asyncio.to_thread(intend, directory, what, sha, at)
    except asyncio.CancelledError:
        raise
    except BaseException:
        with contextlib.suppress(Exception):
            await keep_from_loop(store, directory, month)
        raise
    await keep_from_loop(store, directory, month)


def _marked_months(conn: sqlite3.Connection) -> list[Month]:
    prefix = repo.mailed_key("", "")[:-1]  # "mailed/"
    rows = conn.execute(
        "SELECT key FROM billing_state WHERE key >= ? AND key < ?", (prefix, prefix[:-1] + "0")
    )
    found = set()
    for (key,) in rows:
        with contextlib.suppress(ValueError):
            found.add(Month.parse(str(key)[len(prefix) :].partition("/")[0]))
    return sorted(found, key=str)


def record_marked(db_path: Path, state_dir: Path, billing_dir: Path | None) -> list[Month]:
    """The record of each month whose marks the database holds and whose directory has none (mailed
    by a release that wrote none), or whose record holds a `queuing` line of a run gone, from those
    marks (`_settled`); the months recorded. A month whose directory is gone is
    left alone (nothing on disk for a restore to take), and one whose record a run wrote meanwhile
    too (looked at again under the lock: that run's view is the newer one).

    A month that cannot be recorded (its directory refused: another user's, a FIFO for its lock) is
    logged with why and the others are recorded all the same: one old month refused left every later
    one without a record, each mailed a second time by the next start after a restore over the
    database lost."""
    written = []
    with contextlib.closing(repo.open_reader(db_path)) as conn:
        for month in _marked_months(conn):
            try:
                if _record_from_marks(conn, month_dir(state_dir, month, billing_dir), month):
                    written.append(month)
            except Exception as exc:  # this month's; the next hourly run tries it again
                log.warning(
                    "billing.record_from_marks_failed", month=str(month), error=f"{type(exc).__name__}: {exc}"
                )
    return written


def _record_from_marks(conn: sqlite3.Connection, directory: Path, month: Month) -> bool:
    if not directory.is_dir() or (os.path.lexists(directory / RECORD) and not _stale(conn, directory, month)):
        return False
    with _held(directory):
        found = marks(conn, month)
        if not os.path.lexists(directory / RECORD):
            if found:
                _write(directory, found, [])
            return bool(found)
        if (settled := _settled(directory, found)) is None:
            return False
        _write(directory, *settled)
        return True


def _settled(directory: Path, found: dict[str, str]) -> tuple[dict[str, str], list[str]] | None:
    """The record's marks and `queuing` lines once its dead lines are settled from the database's
    marks (`found`), or None when the record holds no dead line or already says that.

    A dead line whose file the database marks with the line's own mark, or a later run's, is dropped:
    that run's commits are all in the marks. Any other dead line stays (a run killed before it
    committed: a restore says its mails may not have been queued), and its file's older mark is left
    out: the restore takes a file the record marks as mailed and says nothing of its line. A month
    mailed by a release that wrote no record has an older mark for every file, and a `--send --again`
    killed there before its commit lost its only trace, a changed bill then standing as mailed unsaid.
    The record's own marks stay where the database holds none (the database's are the newer ones),
    and so does a line of a run still queueing."""
    tokens = [token for what, token in _lines(directory) if what == QUEUING]
    dead = [(token, intent) for token in tokens if (intent := _dead(token)) is not None]
    if not dead:
        return None
    gone = {token for token, intent in dead if _committed(intent, found.get(intent[0]))}
    standing = {intent[0] for token, intent in dead if token not in gone}
    held = read(directory) or {}
    record = {what: mark for what, mark in {**held, **found}.items() if what not in standing}
    queuing = [token for token in tokens if token not in gone]
    return None if (record, queuing) == (held, tokens) else (record, queuing)


def _dead(token: str) -> tuple[str, str, int, float] | None:
    """A `queuing` line's intent when another process wrote it and is gone (`_alive`), else None."""
    intent = _intent(token)
    return intent if intent is not None and intent[2] != os.getpid() and not _alive(token) else None


def _committed(intent: tuple[str, str, int, float], mark: str | None) -> bool:
    """Whether the database's mark of a dead line's file says that line's mails were committed: its
    own mark (`<sha256> <time>`, the run's time), or a later run's that mailed the file since."""
    if mark is None:
        return False
    at = repo.mark_parts(mark)[1]
    return mark == f"{intent[1]} {intent[3]:.0f}" or (at is not None and at > intent[3])


def _stale(conn: sqlite3.Connection, directory: Path, month: Month) -> bool:
    """Whether the record holds a dead line that the database's marks settle (`_settled`)."""
    if not any(what == QUEUING for what, _ in _lines(directory)):
        return False  # (the marks not read: a month's record holds no such line once its run ends)
    return _settled(directory, marks(conn, month)) is not None


async def record_marked_from_loop(store: Store, state_dir: Path, billing_dir: Path | None) -> list[Month]:
    """`record_marked` from the daemon, in a worker thread on a read-only connection of its own."""
    return await asyncio.to_thread(record_marked, store.path, state_dir, billing_dir)


def read(directory: Path) -> dict[str, str] | None:
    """The marks the record holds, or None: no record, no regular file, or none readable in it."""
    return {what: mark for what, mark in _lines(directory) if what != QUEUING} or None


def intents(directory: Path) -> dict[str, str]:
    """The files whose `queuing` line stands, with the mark (`<sha256> <unix time>`) their mails
    carry if they were committed: the run was killed before it recorded its marks (or still runs),
    and may or may not have queued them. The earliest line of a file wins (its first mail)."""
    found: dict[str, str] = {}
    for what, token in _lines(directory):
        if what == QUEUING and (intent := _intent(token)) is not None:
            found.setdefault(intent[0], f"{intent[1]} {intent[3]:.0f}")
    return found
