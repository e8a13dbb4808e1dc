"""The billing page's file work, off the event loop, with each file's comparison remembered.

The operator's /billing listed every month's directory, stat'ed every file, read the end of each
account's file and hashed each summary to tell a file changed since it was mailed, all on the loop:
35 months of 300 accounts (10,500 files) took 1.0-1.6 s a load and held every SMTP reply as long.
The page now lists `SHOWN_MONTHS` months at a time (`page`), does the file work in a thread, and
remembers each comparison by the file's identity on disk (device, inode, size, mtime in ns): a file
billing writes again is a new file (written beside it and renamed), so its comparison is made again.
A month's whole listing is remembered too (`month_rows`), by its directory's identity and mtime,
which every file billing writes, renames or marks incomplete there changes, by each of its files'
identity on disk (a file rewritten in place by an admin's `cp` or editor changes no directory mtime,
and the page went on showing the size and "as mailed" mark of the bill it replaced), and by its marks
of mail: 12 months of 300 accounts took 340 ms of the thread's Python at every load, holding the
interpreter the loop needs as long; a listing of stats is a fraction of that.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from billing_reports.files import INCOMPLETE
from billing_reports.mailed import whole_sha
from billing_reports.monthly import Month

SHOWN_MONTHS = 12  # a year of bills a page; older ones a link away
REMEMBERED = 50_000  # comparisons kept: every file of 35 months of 1,400 accounts

_lock = threading.Lock()
_seen: OrderedDict[tuple[str, str, str, int, int, int, int], bool] = OrderedDict()
_listed: OrderedDict[tuple[Any, ...], list[dict[str, Any]]] = OrderedDict()


def same(is_it: Callable[[Path, str], bool], path: Path, sha256: str) -> bool:
    """`is_it(path, sha256)` (`billing_reports.mailed.ends_with` or `file_sha256`), remembered while
    the file is the same one on disk. Called from the page's thread and from the loop (a download)."""
    try:
        st = os.stat(path)
    except OSError:
        return is_it(path, sha256)  # gone: the comparison says so, nothing to remember
    key = (is_it.__name__, str(path), sha256, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _lock:
        known = _seen.get(key)
        if known is not None:
            _seen.move_to_end(key)
            return known
    found = is_it(path, sha256)
    with _lock:
        _seen[key] = found
        while len(_seen) > REMEMBERED:
            _seen.popitem(last=False)
    return found


def _whole(path: Path, _sha256: str = "") -> bool:
    """Whether an account's file was written to its end (`billing_reports.mailed.whole_sha`: a regular
    file alone is read, a FIFO in its place would hold the reader)."""
    return whole_sha(path) is not None


def written_whole(directory: Path, name: str) -> bool:
    """Whether the file `name` of a month's directory is whole and, in a month a run left incomplete
    (`billing_reports.files.INCOMPLETE`, written again as each run of the month begins), was written
    by that run, not left from an earlier one it did not reach: such an account file is its bill,
    whatever became of the other accounts' files. Remembered while the file is the same one."""
    path = directory / name
    try:
        began = os.stat(directory / INCOMPLETE).st_mtime_ns
    except FileNotFoundError:
        began = None
    except OSError:
        return False
    try:
        if began is not None and os.lstat(path).st_mtime_ns < began:
            return False
    except OSError:
        return False
    return same(_whole, path, "")


def page(every: list[Month], before: Month | None) -> tuple[list[Month], Month | None]:
    """The months of one page, newest first, older than `before` when given, and the month the next
    (older) page starts before (None: this page has the oldest)."""
    older = [m for m in reversed(every) if before is None or (m.year, m.month) < (before.year, before.month)]
    shown = older[:SHOWN_MONTHS]
    return shown, shown[-1] if len(older) > SHOWN_MONTHS else None


def month_rows(
    directory: Path, given: tuple[Any, ...], build: Callable[[], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """`build()`, the rows of the month in `directory`, remembered while the directory is the same
    one with the same mtime and files, and `given` (who asks, the month's marks, whether it has
    ended) is equal.
    Rows are shared between loads: the caller copies what it changes."""
    try:
        st = os.stat(directory)
        with os.scandir(directory) as entries:
            stats = [(e.name, e.stat(follow_symlinks=False)) for e in entries]
        files = tuple(sorted((name, f.st_ino, f.st_size, f.st_mtime_ns) for name, f in stats))
    except OSError:
        return build()
    key = (str(directory), st.st_dev, st.st_ino, st.st_mtime_ns, files, given)
    with _lock:
        known = _listed.get(key)
        if known is not None:
            _listed.move_to_end(key)
            return known
    rows = build()
    with _lock:
        _listed[key] = rows
        while len(_listed) > 4 * SHOWN_MONTHS * 8:  # a few logins' pages of months
            _listed.popitem(last=False)
    return rows
