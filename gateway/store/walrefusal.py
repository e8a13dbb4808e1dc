"""What a start refused for its WAL (`gateway.store.walcheck`) leaves and says: the WAL and -shm
copied beside the database as they were (`<name>.kept-<UTC time>`, 0600), and the message that names
the ways on.

The copies come first, before anything opens the database: SQLite's recovery at the next open
rebuilds the -shm and, at its last close, checkpoints and deletes the WAL, so whatever the admin
decides next (a backup restored, the WAL put back, `smsgw accept-wal-loss`) loses nothing more.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import structlog

from gateway.store.rescue import fsync_path
from gateway.store.walfile import shm_path, wal_path

log = structlog.get_logger(__name__)


def keep(db: Path, now: float) -> list[Path]:
    """Copy the WAL and -shm beside the database, unless an identical copy was kept already."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    kept: list[Path] = []
    for src in (wal_path(db), shm_path(db)):
        try:
            st = os.stat(src)
        except FileNotFoundError:
            continue
        same = [
            p
            for p in db.parent.glob(f"{src.name}.kept-*")
            if (s := p.stat()).st_size == st.st_size and s.st_mtime_ns == st.st_mtime_ns
        ]
        if same:
            kept.append(same[0])
            continue
        dest = src.with_name(f"{src.name}.kept-{stamp}")
        tmp = src.with_name(f".{dest.name}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            os.close(fd)
            shutil.copyfile(src, tmp)
            shutil.copystat(src, tmp)
            os.chmod(tmp, 0o600)
            fsync_path(tmp, os.O_RDONLY)
            os.replace(tmp, dest)
            fsync_path(db.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            log.error("store.wal_keep_failed", path=str(src), error=exc.strerror or str(exc))
            continue
        kept.append(dest)
    return kept


def refusal(db: Path, why: str, kept: list[Path], *, rebooted: bool) -> str:
    copies = f" Copies kept as they were: {', '.join(map(str, kept))}." if kept else ""
    power = (
        " If the machine lost power, the damage may be writes cut off before they were acknowledged."
        if rebooted and "damaged" in why
        else ""
    )
    return (
        f"the WAL {wal_path(db)} of database {db}: {why}. Mail answered 250 since the last checkpoint"
        f" would be lost; refusing to start.{copies}{power} Restore the last backup (`smsgw restore"
        " BACKUP`) or put the WAL back as it was, or run `smsgw accept-wal-loss` to start with what the"
        " database and the WAL still hold"
    )
