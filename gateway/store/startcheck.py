"""Whether the daemon's start reads the whole database (`PRAGMA quick_check`) or may skip it.

The check is what stops a damaged file at the start, with the file named, instead of at some later
read (or after mail was lost). But it reads every page: 0.43 s with 100,000 SMS queued, 8-13 s on a
year of traffic (3.9 GB), and a restart for a config change or an upgrade kept mail unanswered and
the queue idle that long. A file the daemon itself closed cleanly, unchanged since, has nothing new
to find: every page in it was written by SQLite in the daemon's checkpoints (of its own commits and
of the commands' run beside it, which stay in the WAL until then: `besidedaemon`).

So the daemon's clean stop leaves `<db>.stopped` (`record_stop`) naming the file as it left it
(device, inode, size, mtime and ctime: a copy put in place, a restore, a write by any program
changes one of them, and ctime cannot be set back by a program), the smsgw version that wrote it and
when the check last passed. The next start (`decide`) skips the check only when all of that still
holds, no WAL with frames nor a crash's WAL flag is beside the file, and the last check passed
within CHECK_EVERY_DAYS; it removes the record before the file is opened, so a run that crashes,
is killed or loses power leaves none and the next start checks. The first start, a restored backup,
an upgrade (another version), a file any other program wrote (including an `smsgw` command run while
the daemon was stopped, or a run of an older smsgw, which writes no record) are checked too; the
reason said tells a crash (the WAL flag a run that committed leaves beside the file) from a run that
only left no record. A run during which a write failed (damage, a constraint run, the disk), a read
met damage (`note_damage`) or the file was replaced, or whose close left the WAL (another process has
the file open), records only why: the next start checks and names that reason, not a guess.

The record is the file's stat at the stop, so it must not vouch for what others wrote into the file
during the run (a copy over it in place, `dd conv=notrunc`, a restore tool): the daemon writes the
file only in its own checkpoints, so `OwnWrites` notes its stat after each and compares before the
next and at the stop; a difference leaves no record (it only costs the next start its check: `smsgw
phone forget`, which checkpoints its erasure into the file, too). The start compares the record
with the file as the connection opened it, not only as it was before (a file copied in between).
What this cannot see is a page that goes bad on the disk while the file is not written to, or a
write within the same clock tick as one of the daemon's own: the periodic check finds those, as it
found them before at the next restart, which could be weeks away.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sqlite3
import stat
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from gateway.filemodes import write_private_bytes
from gateway.store.fileguard import UNSYNCED
from gateway.store.rescue import fsync_path
from gateway.store.trouble import WriteTrouble, damaged
from gateway.store.walcheck import flag_path
from gateway.store.walfile import wal_path

log = structlog.get_logger(__name__)

CHECK_EVERY_DAYS = 7  # the whole file is read at a start at least this often, however clean the stops
_FIELDS = ("file", "size", "mtime_ns", "ctime_ns", "version", "checked")
# A stop that cannot vouch for the file writes only why (`record_stop`): the next start said "the last
# run left no record (a first start ...)" after a stop that had logged the WAL held open by another process.
_NOT_RECORDED = "not_recorded"


def record_path(db: Path) -> Path:
    return db.with_name(f"{db.name}.stopped")


@dataclass(frozen=True, slots=True)
class Decision:
    check: bool
    why: str  # said in `store.checked` / `store.check_skipped`
    checked_at: float | None  # when the check last passed (a skip carries it to the next record)
    seen: dict[str, str] | None = None  # a skip's: the file as the record names it


NEW_FILE = Decision(False, "a new database, created by this start: nothing in it to check yet", None)

_runs: weakref.WeakSet[RunTrouble] = weakref.WeakSet()  # the daemon stores open in this process


class RunTrouble(WriteTrouble):
    """`WriteTrouble` that also remembers, for the whole run, why its stop must not vouch for the
    file (`tainted`): a write failed (a damaged page, a constraint run of a file copied under the
    daemon, an I/O error), a read met damage, or another program wrote the file; the next start
    then reads it. Set from any thread; the first reason is kept."""

    def __init__(self) -> None:
        super().__init__()
        self.tainted: str | None = None
        _runs.add(self)

    def taint(self, why: str) -> None:
        if self.tainted is None:
            self.tainted = why

    def failed(self, exc: BaseException) -> int:
        self.taint(f"a write failed during the run ({str(exc) or type(exc).__name__})")
        return super().failed(exc)

    def note_damage(self, exc: BaseException) -> None:
        if damaged(exc):
            self.taint(f"a read met damage during the run ({exc})")

    def closing_checkpoint_failed(self, error: str) -> None:
        self.taint(f"the checkpoint at the stop failed ({error}): its frames are still in the WAL")


def note_damage(exc: BaseException) -> None:
    """A failure met outside the store's write path (a worker's crash): when SQLite's word for a
    damaged file, no daemon store of this process records a clean stop."""
    if damaged(exc):
        for run in list(_runs):
            run.note_damage(exc)


class OwnWrites:
    """The database file as the daemon's own last write left it.

    With its automatic checkpoints off, the daemon writes the file only in its checkpoint thread
    (`writing`, around each) and at its close; anything else that changes the file's stat in
    between (another program writing into it in place) taints the run, found before the next own
    write or at the stop (`look`)."""

    def __init__(self, db: Path, run: RunTrouble) -> None:
        self.db = db
        self.run = run
        self._lock = threading.Lock()
        self._noted = self._stat()

    def _stat(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.db)
        except OSError:
            return None
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns

    def look(self) -> None:
        if self._stat() != self._noted:
            self.run.taint("the file was written during the run by another program (in place, or replaced)")

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._lock:
            self.look()
            try:
                yield
            finally:
                self._noted = self._stat()


def _identity(st: os.stat_result) -> dict[str, str]:
    return {
        "file": f"{st.st_dev}:{st.st_ino}",
        "size": str(st.st_size),
        "mtime_ns": str(st.st_mtime_ns),
        "ctime_ns": str(st.st_ctime_ns),
    }


def _read(record: Path) -> dict[str, str] | None:
    """The record's fields; None without one, {} (check) for one that is not a regular file of its
    own (a link, a FIFO, which would block the start) or cannot be read."""
    try:
        fd = os.open(record, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return {}
        try:
            text = f.read(4096).decode("utf-8", errors="replace")
        except OSError:
            return {}
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            fields[key.strip()] = value.strip()
    return fields


def _ago(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(seconds, 0) / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _release(version: str) -> tuple[int, ...] | None:
    """A version's release numbers ("0.2.30" of "0.2.30rc1"), None where it starts with none."""
    found = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(n) for n in found.group().split(".")) if found else None


def _which_way(last: str, this: str) -> str:
    """The change of version since the last stop, as far as the two tell: an older smsgw started on
    the file a newer one stopped was said to be "an upgrade"."""
    before, now = _release(last), _release(this)
    if before is None or now is None or before == now:
        return "another version"
    return "an upgrade" if before < now else "a downgrade"


def _why_check(db: Path, fields: dict[str, str] | None, now: float, version: str) -> str | None:
    """Why the file must be read whole; None when the record vouches for it."""
    if fields is not None and (why := fields.get(_NOT_RECORDED)):  # before the flag: that stop left it
        with contextlib.suppress(OSError):
            if fields.get("file") not in (None, _identity(os.stat(db))["file"]):
                return "the file was replaced since the last stop (a restored backup, a copy put in place)"
        return f"the last stop could not record a clean stop: {why}"
    if fields is None:  # an older smsgw writes no record; its crash leaves the WAL flag as this one's does
        if flag_path(db).exists():
            return "no clean stop recorded (the last run crashed, was killed or lost power)"
        return "the last run left no record (a first start with this version, an older smsgw, or a command)"
    if not fields.keys() >= set(_FIELDS):
        return "the record of the last stop is unreadable"
    if fields["version"] != version:
        last = fields["version"]
        return f"{_which_way(last, version)}: the last stop was of smsgw {last}, this is {version}"
    try:
        now_there = _identity(os.stat(db))
    except OSError as exc:
        return f"the file cannot be read ({exc.strerror or exc})"
    changed = [key for key in ("file", "size", "mtime_ns", "ctime_ns") if now_there[key] != fields[key]]
    if "file" in changed:
        return "the file was replaced since the last stop (a restored backup, a copy put in place)"
    if changed:
        return "the file was changed since the last stop (another program, a command, or an older smsgw)"
    if flag_path(db).exists():
        return "a run committed since the last stop and did not close the database cleanly"
    with contextlib.suppress(FileNotFoundError):
        if wal_path(db).stat().st_size:
            return "a WAL with frames is beside the file: written since the last stop"
    try:
        checked = float(fields["checked"])
    except ValueError:
        return "the record of the last stop is unreadable"
    if not math.isfinite(checked):  # nan passed every comparison: no check ever again
        return "the record of the last stop is unreadable"
    age = now - checked
    if age >= CHECK_EVERY_DAYS * 86400:
        return f"last checked {_ago(age)} ago (every {CHECK_EVERY_DAYS} days)"
    if age < -3600:
        return "the last check is dated in the future (the clock was set back)"
    return None


def decide(db: Path, now: float, version: str) -> Decision:
    """Read the daemon's record of its last clean stop of `db` and remove it (this run's own stop
    writes the next one); whether the start checks the whole file, and why.

    Called before anything opens or touches the file: a mode narrowed, a WAL taken in, changes what
    the record compares. The removal is synced before the file is opened, so that this run's crash,
    even at a power loss, leaves no record behind."""
    record = record_path(db)
    fields = _read(record)
    why = _why_check(db, fields, now, version)
    if fields is not None:
        try:
            record.unlink()
            fsync_path(db.parent, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            pass
        except OSError as exc:  # it would vouch for this run's file after a crash: check, and say why
            why = why or f"the record of the last stop could not be removed ({exc.strerror or exc})"
    if why is not None:
        return Decision(True, why, None)
    checked = float(fields["checked"]) if fields else now
    said = f"stopped cleanly and unchanged since; last checked {_ago(now - checked)} ago"
    seen = {key: fields[key] for key in ("file", "size", "mtime_ns", "ctime_ns")} if fields else None
    return Decision(False, said, checked, seen)


def opened(db: Path, decision: Decision) -> Decision:
    """After the connection opened `db`: a skip stands only while the file is still the one the
    record names (a copy put in place, or a write into it, between `decide` and the open is read)."""
    if decision.check or decision.seen is None:
        return decision
    try:
        now_there = _identity(os.stat(db))
    except OSError as exc:
        return Decision(True, f"the file cannot be read ({exc.strerror or exc})", None)
    if now_there != decision.seen:
        return Decision(True, "the file was replaced or written to while this start opened it", None)
    return decision


def quick_check(conn: sqlite3.Connection, db: Path, decision: Decision | None) -> str:
    """`PRAGMA quick_check`'s answer, said in the log (`decision`: the daemon's) also when SQLite
    raises instead of answering (a page it cannot even walk)."""
    started = time.monotonic()
    try:
        ok: str = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        if decision is not None:
            said(db, decision, time.monotonic() - started, f"error: {exc}")
        raise
    if decision is not None:
        said(db, decision, time.monotonic() - started, ok)
    return ok


# What `Db.replaced` holds, as the stop names it (`fileguard`: `store.file_replaced`'s `how`, and
# `store.fsync_failed`): one phrase for all named a failed fsync for a file that was deleted.
_REPLACED = {
    "replaced": "the file was replaced during the run",
    "WAL file replaced": "the WAL file was replaced during the run",
    "deleted": "the file was deleted during the run",
    UNSYNCED: "a WAL fsync failed during the run",
}


def record_stop(
    db: Path, now: float, checked_at: float, version: str, replaced: object, tainted: str | None
) -> None:
    """The daemon closed `db` (`replaced`: `Db.replaced`, None while the file was its own; `tainted`:
    `RunTrouble.tainted`): when cleanly, with every frame in the file and the WAL gone, say
    so for the next start. Otherwise only why is written, which vouches for nothing: the next start
    checks and says the stop's own reason; a close that left the WAL (another process still had the
    file open) too. A failure to write only warns."""
    why = None
    if replaced is not None:
        why = _REPLACED.get(str(replaced), f"the file was {replaced} during the run")
    elif tainted is not None:
        why = tainted
    elif flag_path(db).exists() or wal_path(db).exists():
        why = "the WAL is still beside the database (another process has it open)"
    record = record_path(db)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    if why is not None:
        log.info("store.stop_not_recorded", path=str(db), why=why)
        said = " ".join(why.split())[:500]  # one line: the record is read line by line
        text = f"# smsgw: the daemon closed {db.name} at {stamp} and could not vouch for it.\n"
        with contextlib.suppress(OSError):  # which file it was: a restore put in its place is said
            text += f"file = {_identity(os.stat(db))['file']}\n"
        _write_record(record, text + f"{_NOT_RECORDED} = {said}\n")
        return
    try:
        fields = _identity(os.stat(db))
    except OSError as exc:
        log.warning("store.stop_record_failed", path=str(record), error=exc.strerror or str(exc))
        return
    text = (
        f"# smsgw: the daemon closed {db.name} cleanly at {stamp}. While the file is as below,\n"
        "# the next start skips its whole-file check (made at a start at least every"
        f" {CHECK_EVERY_DAYS} days).\n"
        "# Removed at every start. Removing it only makes the next start check the file.\n"
    )
    fields |= {"version": version, "checked": repr(checked_at)}
    _write_record(record, text + "".join(f"{key} = {fields[key]}\n" for key in _FIELDS))


def _write_record(record: Path, text: str) -> None:
    try:
        write_private_bytes(record, text.encode())
    except OSError as exc:
        record.unlink(missing_ok=True)
        log.warning("store.stop_record_failed", path=str(record), error=exc.strerror or str(exc))


def said(db: Path, decision: Decision, seconds: float | None = None, result: str = "ok") -> None:
    """The choice, in the start's log, where an admin wondering about a start's time looks."""
    if decision.check:
        seconds = round(seconds or 0.0, 2)
        log.info("store.checked", path=str(db), why=decision.why, seconds=seconds, result=result[:200])
    else:
        log.info("store.check_skipped", path=str(db), why=decision.why)
