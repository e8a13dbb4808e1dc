"""Commits the WAL held at a crash, never silently lost at the next start.

The serving daemon checkpoints only from its own thread (`gateway.store.checkpoint`), so after a
crash `smsgw.db-wal` holds every mail accepted since the last checkpoint. SQLite itself cannot tell
when that file is damaged or gone: it takes the first frame whose checksum fails as the end of the
log, and a missing WAL as an empty one; the database it then shows is consistent, passes
`quick_check`, and the mail after that point is forgotten without a word although its sender heard
`250`. On open SQLite also rebuilds the -shm from what it read and, at the last close, checkpoints
and deletes the WAL, so the evidence is gone once anything has opened the database. Hence this
check runs on the files alone, before SQLite opens them (`Db.open`, and `smsgw run` and the other
commands before their first read), and only while no process has the database open: /proc/locks
shows SQLite's locks on the database and its -shm (a WAL someone is writing is no crash's leftover).
Where /proc/locks cannot be read, nothing is checked.

The evidence, and why it can be relied on:
- `<db>.wal-in-use` (`flag_path`): written (and fsynced with its directory) by a process right after
  its first COMMIT, before that commit is acknowledged to anyone; removed when the database is
  closed and SQLite has deleted the WAL, which it does only after checkpointing every frame into the
  database file (`Db.close`, or at the exit of a process that never called it: most commands).
  Present at a start = some run committed and did not close cleanly. It names the boot it was
  written in (/proc/sys/kernel/random/boot_id) and the database file (device:inode); a flag naming
  another file (a backup put in place) speaks of a WAL set aside with the old one and is ignored,
  as is one `smsgw restore` or a database deleted under the daemon leaves (both remove it).
- The -shm's header (the wal-index): how many frames of the WAL (`mxFrame`) were committed, and
  under which salts. Within one boot it is what SQLite last wrote (a killed process leaves the page
  cache, shared with every reader, as it was), so a WAL holding fewer valid frames than it says,
  or other salts, lost commits: this catches a cut even on a frame boundary. After a reboot the
  -shm on disk is whatever the kernel happened to write back (it is never fsynced), so it is not used.
- The WAL itself (read by `gateway.store.walfile`; the frames SQLite's own recovery vouches for,
  found on a read-only probe of a hard link, are not summed again in Python: `recovered_frames`):
  a frame with the header's salts whose cumulative checksum fails, followed by a commit frame that
  is intact in itself (its checksum starting from the stored one of the frame before it) with the
  same salts, is committed data after a damaged frame: SQLite would drop everything from the
  damaged frame on. A WAL header that fails its checksum in front of frames makes SQLite ignore the
  whole file. Both are refused whatever the flag says. Caveat: after a power loss, writes not yet
  fsynced (never acknowledged) may reach the disk out of order and look the same; the message says
  so, as the admin knows whether power failed.

Refused (as `StoreUnusable`: exit 3, which systemd does not restart) when the flag is present and
the WAL is missing, when (in the same boot) it has no frame and its -shm does not show that a
checkpoint emptied it, or when the -shm of that boot counts more committed frames than the WAL
holds; and on the damage above. Before refusing, the WAL and -shm are copied beside the database
(`<name>.kept-<UTC time>`), as they are, so that whatever is done next loses nothing more
(`gateway.store.walrefusal`: the copies and the message).
`smsgw accept-wal-loss` is the admin's "start anyway": it lets SQLite take what is valid,
checkpoints it into the database and removes the flag; a WAL older than the file is set aside instead
(`_older_than_the_file`), and the start goes on where the file holds every committed frame.

Not detectable, and not pretended: a WAL cut cleanly on a frame boundary (or mid-frame, a torn
tail) with no -shm of the same boot beside it looks exactly like a log whose last commit was the
last frame, as after a power loss; telling them apart needs the last acknowledged commit recorded
outside the WAL at every commit. A WAL deleted together with its -shm leaves nothing to
go by: that is what SQLite's own last close leaves (every frame checkpointed into the database,
then both files removed), and a connection outside smsgw (the `sqlite3` shell, a monitoring script
reading the database after a crash) closes so without a word to the flag; refusing the start then
kept a healthy gateway down. A process that commits between another one's clean close and its
removal of the flag (microseconds) is not covered either, nor a commit of another smsgw process made
after the daemon's clean close marked the flag `closed = checkpointed` (`checkpoint_at_close`).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import structlog

from gateway.filemodes import write_private_bytes
from gateway.store.fileguard import StoreUnusable
from gateway.store.proclocks import in_use
from gateway.store.rescue import fsync_path
from gateway.store.walfile import (
    ShmHeader,
    WalScan,
    read_shm,
    scan_wal,
    shm_path,
    wal_path,
)
from gateway.store.walrefusal import keep, refusal

log = structlog.get_logger(__name__)

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
CHECKPOINTED = "closed = checkpointed"  # the flag's line: its run ended with every frame in the database


def flag_path(db: Path) -> Path:
    return db.with_name(f"{db.name}.wal-in-use")


def recovered_frames(db: Path, page_size: int) -> int:
    """The frames of `db`'s WAL that SQLite's recovery (in C) takes as valid and committed, found
    without opening `db`: a probe database in a directory of its own, made of `db`'s first page and
    a hard link to its WAL, opened read-only (which never writes the WAL nor checkpoints or deletes
    it at its close); its -shm then says. 0 where that cannot be done: everything is summed here."""
    probe_dir = db.with_name(f".{db.name}.walcheck-{os.getpid()}")
    try:
        shutil.rmtree(probe_dir, ignore_errors=True)
        probe_dir.mkdir(mode=0o700)
        probe = probe_dir / "probe.db"
        with db.open("rb") as src:
            first = src.read(page_size)
        if first[18:20] != b"\x02\x02":  # not in WAL mode as the file says: no probe
            return 0
        write_private_bytes(probe, first)
        os.link(wal_path(db), wal_path(probe))
        with closing(sqlite3.connect(f"file:{probe}?mode=ro", uri=True, isolation_level=None)) as conn:
            conn.execute("PRAGMA user_version").fetchone()  # a read: SQLite recovers the WAL's index
        shm = read_shm(shm_path(probe))
        return shm.max_frame if shm is not None else 0
    except (OSError, sqlite3.Error):
        return 0
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)


# ---- who has the database open ----------------------------------------------------------------------


def boot_id() -> str | None:
    try:
        return BOOT_ID.read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def read_flag(db: Path) -> dict[str, str] | None:
    """The flag's fields (`boot`, `file`, ...), or None without a flag. One that names another file
    than the one at `db` now (a backup copied in its place, a rescued copy restored) speaks of a WAL
    set aside with that file: it counts as no flag."""
    try:
        text = flag_path(db).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return {}  # there but unreadable: unclean, boot unknown
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            fields[key.strip()] = value.strip()
    if fields.get("file") not in (None, _file_id(db)):
        return None
    return fields


def _file_id(db: Path) -> str:
    try:
        st = os.stat(db)
    except OSError:
        return ""
    return f"{st.st_dev}:{st.st_ino}"


# ---- the flag's life ----------------------------------------------------------------------------------


def note_commit(db: Path, now: float) -> None:
    """A first COMMIT of this process is in the WAL: say so durably before anyone hears of it.

    Raises OSError when it cannot be written (disk full): the caller's commit is not acknowledged."""
    flag = flag_path(db)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    text = (
        f"# smsgw: {db.name}-wal beside this file may hold commits not yet in {db.name}.\n"
        "# Removed when the database is closed cleanly. While it is here, a start refuses to run\n"
        "# without that WAL (see `smsgw accept-wal-loss`).\n"
        f"boot = {boot_id() or ''}\nfile = {_file_id(db)}\npid = {os.getpid()}\nsince = {stamp}\n"
    )
    if flag.exists():
        write_private_bytes(flag, text.encode())  # names this boot: the -shm is this boot's now
        return
    write_private_bytes(flag, text.encode())
    fsync_path(db.parent, os.O_RDONLY | os.O_DIRECTORY)


def note_closed(db: Path, *, wal_gone: bool = False) -> None:
    """The connection is closed: once SQLite has deleted the WAL (every frame checkpointed), the
    flag goes. Another connection still open keeps the WAL, and so the flag. `wal_gone`: emptied
    by a checkpoint, as good as deleted (`checkpoint_at_close`)."""
    if not wal_gone and wal_path(db).exists():
        return
    flag = flag_path(db)
    try:
        flag.unlink()
        fsync_path(db.parent, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("store.wal_flag_failed", path=str(flag), error=exc.strerror or str(exc))


def checkpoint_at_close(conn: sqlite3.Connection, db: Path) -> str | None:
    """Before a connection that committed closes: every frame into the database and the WAL emptied,
    then the flag goes. Without this, a reader still open (a thread's, a `smsgw backup`) would keep
    SQLite from deleting the WAL at this close, and delete it at its own, later, with the flag left
    behind: the next start would refuse. While another process has the database open, the flag stays
    but says `closed = checkpointed`: a WAL missing then lost nothing of this run, and another smsgw
    process that commits rewrites the flag at its first commit. Returns SQLite's error when the
    checkpoint failed (a full disk), for the daemon's stop to name as why it vouches for nothing."""
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        log.warning("store.checkpoint_failed", mode="TRUNCATE", error=str(exc))
        return str(exc) or type(exc).__name__
    wal = wal_path(db)
    if busy or (wal.exists() and wal.stat().st_size):
        return None
    if in_use(db, others=True) is False:
        note_closed(db, wal_gone=True)
        return None
    flag = flag_path(db)
    try:
        text = flag.read_text(encoding="utf-8", errors="replace")
        write_private_bytes(flag, f"{text}{CHECKPOINTED}\n".encode())
    except OSError as exc:
        log.warning("store.wal_flag_failed", path=str(flag), error=exc.strerror or str(exc))
    return None


# ---- the check ------------------------------------------------------------------------------------------

_checked: set[tuple[str, int, int, int, bool]] = set()  # what this process found fine already


def refuse_lost_commits(db: Path, now: float) -> None:
    """Raise `StoreUnusable` when the WAL beside `db` lost (or SQLite would drop) committed frames.

    Called before SQLite opens `db`; does nothing while the database is open anywhere."""
    if not db.exists() or in_use(db) is not False:
        return
    flag = read_flag(db)
    flagged, boot = flag is not None, (flag or {}).get("boot") or None
    wal = wal_path(db)
    try:
        st = os.stat(wal)
        key = (str(db.absolute()), st.st_ino, st.st_size, st.st_mtime_ns, flagged)
    except FileNotFoundError:
        key = (str(db.absolute()), 0, -1, 0, flagged)
    if key in _checked:  # `smsgw run` checks before its first read, and again in `Db.open`
        return
    if _set_aside_if_in_the_file(db, flag, now):
        return
    why = _problem(db, flag)
    if why is None:
        _checked.add(key)
        return
    kept = keep(db, now)
    log.critical("store.wal_refused", path=str(db), problem=why, kept=[str(p) for p in kept])
    raise StoreUnusable(refusal(db, why, kept, rebooted=flagged and boot != boot_id()))


def _older_than_the_file(db: Path, flag: dict[str, str] | None) -> ShmHeader | None:
    """The -shm of the same boot when SQLite, opening `db`, would take fewer frames of the WAL (cut,
    or damaged) than a checkpoint had already copied into the file (its nBackfill, under the WAL's
    salts): it would read them as the log and copy those older pages over newer ones (300 mails
    answered 250, all in the file: 76 gone after accept-wal-loss). Such a WAL is set aside, never
    replayed: the file holds every frame up to nBackfill."""
    if flag is None or (flag.get("boot") or None) != boot_id():
        return None
    shm = read_shm(shm_path(db))
    if shm is None or shm.backfill == 0:
        return None
    scan = scan_wal(wal_path(db), lambda page_size: recovered_frames(db, page_size))
    return shm if scan.salts == shm.salts and scan.committed < shm.backfill else None


def _set_aside(db: Path, now: float) -> list[Path]:  # copied as the refusals keep them, then removed
    kept = keep(db, now)
    for path in (wal_path(db), shm_path(db)):
        path.unlink(missing_ok=True)
    return kept


def _set_aside_if_in_the_file(db: Path, flag: dict[str, str] | None, now: float) -> bool:
    """Such a WAL (`_older_than_the_file`) every committed frame of which is in the file: set aside,
    and the start goes on, nothing lost. True if so."""
    shm = _older_than_the_file(db, flag)
    if shm is None or shm.backfill < shm.max_frame:
        return False
    kept = _set_aside(db, now)
    flag_path(db).unlink(missing_ok=True)
    fsync_path(db.parent, os.O_RDONLY | os.O_DIRECTORY)
    copies = [str(p) for p in kept]
    log.warning("store.wal_already_in_database", path=str(db), frames=shm.max_frame, kept=copies)
    return True


def _problem(db: Path, flag: dict[str, str] | None) -> str | None:
    """Why the WAL beside `db` lost (or SQLite would drop) committed frames; None when it did not."""
    wal = wal_path(db)
    scan = scan_wal(wal, lambda page_size: recovered_frames(db, page_size))
    why = damage(scan)
    if why is None and flag is not None:
        boot = flag.get("boot") or None
        same_boot = boot is not None and boot == boot_id()
        if flag.get("closed") != "checkpointed" or scan.frames_present:
            if wal.exists() or shm_path(db).exists():
                why = lost(scan, read_shm(shm_path(db)) if same_boot else None, wal.exists(), same_boot)
            else:  # SQLite's own last close: it checkpointed every frame, then removed WAL and -shm
                log.info("store.wal_closed_elsewhere", path=str(db))
                flag_path(db).unlink(missing_ok=True)  # spoke of commits now in the database file
    return why


def nothing_lost(db: Path) -> bool:
    """Whether a start would go ahead on `db` as it is: its WAL lost nothing, so there is no loss for
    `accept_loss` to accept (a database stopped cleanly, or a crash's WAL that is whole). False
    where that cannot be told: the database open in some process, or /proc/locks unreadable."""
    return db.exists() and in_use(db) is False and _problem(db, read_flag(db)) is None


def damage(scan: WalScan) -> str | None:
    """Why SQLite would drop committed frames of this WAL, whatever the last run was."""
    if scan.frames_present and not scan.header_ok:
        return f"its header is damaged, and SQLite would ignore all {scan.size} bytes of it"
    if scan.damaged is not None and scan.committed_after:
        return (
            f"frame {scan.damaged} is damaged (its checksum fails) and {scan.committed_after} committed"
            " frame(s) follow it, which SQLite would drop with it"
        )
    return None


def lost(scan: WalScan, shm: ShmHeader | None, wal_exists: bool, same_boot: bool) -> str | None:
    """Why commits of a run that did not close cleanly are missing from its WAL (`shm`: the -shm
    of the same boot, when it checks out)."""
    if not wal_exists:
        return "it is missing, although the last run did not close the database cleanly"
    if shm is not None and shm.max_frame:
        if shm.salts != scan.salts or scan.committed < shm.max_frame:
            return (
                f"it holds {scan.committed} committed frame(s) where the -shm of the last run counts"
                f" {shm.max_frame}: it was cut short or replaced"
            )
        return None
    if scan.committed or scan.damaged is not None:
        return None
    if shm is not None and shm.salts != bytes(8):
        return None  # a checkpoint emptied it (new salts, no frame yet)
    if not same_boot:
        return None  # emptied by a checkpoint, then power lost before the next frame reached the disk
    return (
        "it has no frame, although the last run did not close the database cleanly and nothing"
        " (the -shm it left) says that a checkpoint emptied it"
    )


def accept_loss(db: Path, now: float) -> tuple[list[Path], int]:
    """The admin's "start anyway": SQLite takes what is valid of the WAL into the database, and the
    flag goes. (kept copies, frames SQLite took). The caller holds the daemon's lock."""
    older = _older_than_the_file(db, read_flag(db))  # the file has more: the WAL is set aside
    kept = _set_aside(db, now) if older is not None else keep(db, now)
    with closing(sqlite3.connect(f"file:{db}?mode=rw", uri=True, isolation_level=None)) as conn:
        # A TRUNCATE checkpoint that succeeds answers (0, 0, 0): the WAL it emptied has no frame
        # left to count, and the admin read "took 0 frames" after one that took 74 mails back.
        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        frames = older.backfill if older is not None else frames
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise StoreUnusable(f"database {db} is open in another process; stop it and run this again")
        ok = conn.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            raise StoreUnusable(f"database {db} failed its integrity check ({ok}); restore a backup")
    flag_path(db).unlink(missing_ok=True)
    fsync_path(db.parent, os.O_RDONLY | os.O_DIRECTORY)
    _checked.clear()
    log.warning("store.wal_loss_accepted", path=str(db), frames=max(frames, 0), kept=[str(p) for p in kept])
    return kept, max(frames, 0)
