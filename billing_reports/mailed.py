"""The mailed versions of a month's billing files, kept when a run writes the files again with other
rows (R-5.1: the files an account and the operator were sent stay on disk, byte for byte).

A copy is found by its bytes, never by its name alone: two mailings in one second are two copies.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from billing_reports import repo
from billing_reports.files import BILLING_FILE_MODE, fsync_dir, safe_dir, write_atomic


def mailed_copy(path: Path, mark: str, tz: ZoneInfo, nth: int = 1) -> Path:
    """Where the mailed version of a month's file is kept once a run writes another: in the month's
    directory, in `mailed-<local date and time the run queued its mails, to the second>/`, under its own
    name; `nth` > 1 adds `-<nth>` for another version mailed in the same second.

    R-5.1 keeps the files on disk, and the operator must be able to show the file an account was
    sent; `<account>.txt` is the newest, as the summary's checksums name it. A directory, not a
    suffix: no account's file name can then be taken (any name may be an account's), nor a long
    one pushed past 255 bytes, and what lists a month's files (`*.txt`) lists the same."""
    at = repo.mark_parts(mark)[1]
    when = "" if at is None else datetime.fromtimestamp(at, tz).strftime("-%Y-%m-%d-%H%M%S")
    return path.parent / f"mailed{when}{'' if nth == 1 else f'-{nth}'}" / path.name


def file_sha256(path: Path, sha256: str) -> bool:
    """The whole file's SHA-256 is `sha256` (the summary's mark: it has no `end` line of an account's)."""
    data = regular_bytes(path)  # a FIFO in the file's place held a plain read, and the run, forever
    return data is not None and hashlib.sha256(data).hexdigest() == sha256


def kept_copy(
    path: Path, mark: str, tz: ZoneInfo, is_it: Callable[[Path, str], bool], dirs: list[Path]
) -> Path | None:
    """The copy already kept of the version `mark` mailed, found by its bytes, not by its name alone.

    Two mailings of a month in one minute (`--send`, a late report, `--send --again`) were one name
    when copies were named to the minute, and a copy of the first was then taken for the second's.
    Copies of that minute are looked at first (also those named to the minute before), then the others:
    any copy with the mailed bytes is the file the account was sent. `dirs`: the month's copy
    directories, listed once per run (listed again for each file, a rerun of 3,000 accounts took
    6.5 s, growing with the square of their number)."""
    minute = mailed_copy(path, mark, tz).parent.name[: len("mailed-YYYY-MM-DD-HHMM")]
    copies = [d / path.name for d in dirs]
    sha = repo.mark_parts(mark)[0]
    for copy in sorted(copies, key=lambda c: (not c.parent.name.startswith(minute), c.parent.name)):
        if is_it(copy, sha):
            return copy
    return None


def keep_mailed(
    path: Path, mark: str | None, tz: ZoneInfo, is_it: Callable[[Path, str], bool], dirs: list[Path]
) -> Path | None:
    """Before `path` is written again: if it is the version mailed (`mark`) and no copy of it is kept
    yet, keep it at a free `mailed_copy` (a hard link, no bytes copied) and return that; else None.

    A name taken holds another version mailed in the same second: the next one is used, as a copy
    once kept is never overwritten (it is what an account was sent)."""
    if mark is None or not is_it(path, repo.mark_parts(mark)[0]):
        return None
    if kept_copy(path, mark, tz, is_it, dirs) is not None:
        return None
    nth = 0
    while True:
        nth += 1
        copy = mailed_copy(path, mark, tz, nth)
        safe_dir(copy.parent)
        if copy.parent not in dirs:
            dirs.append(copy.parent)
        try:
            os.link(path, copy)
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links
            if not _claim(copy):
                continue
            try:
                with open(path, "rb") as f:
                    write_atomic(copy, iter(lambda: f.read(1 << 16), b""))
            except BaseException:
                copy.unlink(missing_ok=True)
                raise
            return copy
        fsync_dir(copy.parent)
        fsync_dir(path.parent)
        return copy


def _claim(copy: Path) -> bool:
    """Take the name `copy` for a copy written in bytes (no hard links), or say it is taken: the
    rename that writes it atomically would replace another copy there."""
    try:
        os.close(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, BILLING_FILE_MODE))
    except FileExistsError:
        return False
    return True


def settle_mailed(
    path: Path,
    mark: str | None,
    sha256: str,
    made: Path | None,
    tz: ZoneInfo,
    kept: dict[Path, Path],
    is_it: Callable[[Path, str], bool],
    dirs: list[Path],
) -> None:
    """After `path` was written (`sha256`): a copy made of the same bytes goes again; a file that is
    not the one mailed is listed in `kept` with where the mailed one is, if it is kept."""
    if mark is None:
        return
    if repo.mark_parts(mark)[0] == sha256:
        if made is not None:
            made.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                made.parent.rmdir()  # when empty
        return
    if (copy := made or kept_copy(path, mark, tz, is_it, dirs)) is not None:
        kept[path] = copy


def ends_with(path: Path, sha256: str) -> bool:
    """The file on disk is the one just rendered: its `end` line carries the same checksum. Only a
    regular file is read (`open_regular`): a FIFO in its place held the billing run forever."""
    with open_regular(path) as f:
        if f is None:
            return False
        try:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 100))
            return f.read().endswith(f"\tsha256:{sha256}\n".encode())
        except OSError:
            return False


_END = re.compile(rb"end\t\d+\tsha256:([0-9a-f]{64})")


def regular_bytes(path: Path) -> bytes | None:
    """The bytes of `path` when it is a regular file, else None (missing, unreadable, a link, a FIFO).
    Never opened otherwise: a FIFO standing where a billing file goes held a plain read forever, the
    billing run or the panel's page with it."""
    with open_regular(path) as f:
        if f is None:
            return None
        try:
            return f.read()
        except OSError:
            return None


@contextlib.contextmanager
def open_regular(path: Path) -> Iterator[BinaryIO | None]:
    """`path` open for reading when it is a regular file, else None (missing, unreadable, a link, a
    FIFO, a device). Opened without blocking and checked before any read: opening a FIFO blocks
    until a writer comes, reading one until it writes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        yield None
        return
    with os.fdopen(fd, "rb") as f:
        yield f if stat.S_ISREG(os.fstat(fd).st_mode) else None


def whole_sha(path: Path) -> str | None:
    """The checksum of a file's `end` line when the file is whole (the bytes above that line hash to
    it, as `render` and `writer.render_summary` write it): a run wrote it to its end. None for a file
    missing, cut short, edited, or no regular file. The panel's "written whole" is this too."""
    data = regular_bytes(path)
    if data is None:
        return None
    last = data[:-1].rpartition(b"\n")[2]
    found = _END.fullmatch(last) if data.endswith(b"\n") else None
    if found is None:
        return None
    sha = found.group(1).decode()
    return sha if hashlib.sha256(data[: len(data) - len(last) - 1]).hexdigest() == sha else None


def disk_mark(path: Path, *, summary: bool = False) -> str | None:
    """The mark (`repo.mailed_key`'s value) of a whole file of a billed month whose mark is lost (a
    restore over a database that could not be read): the file on disk is the record of what was mailed,
    the summary by its whole bytes (`file_sha256`), an account's by its `end` line (`ends_with`), and
    when by the file's time. None when the file is not whole."""
    sha = whole_sha(path)
    if sha is None:
        return None
    try:
        at = path.stat().st_mtime
    except OSError:
        return None
    if summary:
        if (data := regular_bytes(path)) is None:
            return None
        sha = hashlib.sha256(data).hexdigest()
    return f"{sha} {at:.0f}"
