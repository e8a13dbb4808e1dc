"""SQLite's threading mode for the daemon: each connection used by one thread, no mutex of its own.

SQLite as Debian builds it runs "serialized": every call on a connection (each step, bind and
column read) takes that connection's mutex, and every allocation takes the global memory-statistics
mutex. Python's `sqlite3` gives no way to open a connection with `SQLITE_OPEN_NOMUTEX`, and its
module has initialised SQLite by the time it is imported, when `sqlite3_config` is refused. In the
daemon each connection belongs to one thread (the module's `check_same_thread`, left on everywhere,
refuses any other thread's use), so those mutexes guard nothing there, and they were some 4 % of the
main process's instructions (about 780 mutex enters a mail).

`multi_thread` switches SQLite to its multi-thread mode (a connection is never used by two threads
at once: no mutex of its own) with the memory statistics off, by shutting it down, configuring it and
initialising it again. That is allowed only while no connection is open in the process: SQLite's
count of outstanding allocations (kept while the statistics are on) is 0 then, and anything else
leaves the process as it was. The daemon calls it as it opens its database, before any other
connection of its own exists."""

from __future__ import annotations

import _sqlite3
import ctypes
import sqlite3
import threading

_SQLITE_OK = 0
_CONFIG_MULTITHREAD = 2
_CONFIG_SERIALIZED = 3
_CONFIG_MEMSTATUS = 9
_STATUS_MALLOC_COUNT = 9

_lock = threading.Lock()
_switched = False


def _library() -> ctypes.CDLL | None:
    """SQLite as the `sqlite3` module has it: symbols looked up through the extension module find
    the library it is linked to (or its own copy, if built in), never another one on the system."""
    try:
        lib = ctypes.CDLL(_sqlite3.__file__)
        lib.sqlite3_config  # noqa: B018 - present, or AttributeError
    except (OSError, AttributeError):
        return None
    return lib


def _allocations(lib: ctypes.CDLL) -> int:
    current, highest = ctypes.c_int64(), ctypes.c_int64()
    status = lib.sqlite3_status64(_STATUS_MALLOC_COUNT, ctypes.byref(current), ctypes.byref(highest), 0)
    if status != _SQLITE_OK:
        return -1
    return current.value


def _none_open(lib: ctypes.CDLL) -> bool:
    """No connection open in the process, as far as SQLite's allocation count can tell: that count
    is 0 with connections open when the statistics are off (a build's default, or switched off
    before), so a connection of our own must show in it before its 0 is believed."""
    if _allocations(lib) != 0:
        return False
    probe = sqlite3.connect(":memory:")
    try:
        counted = _allocations(lib) > 0
    finally:
        probe.close()
    return counted and _allocations(lib) == 0


def multi_thread() -> bool:
    """Whether SQLite now runs without connection and memory-statistics mutexes in this process.

    False, and nothing changed, when a connection is open (SQLite holds memory for it), the library
    cannot be reached, or it refuses a step (it is then initialised as it was)."""
    global _switched
    with _lock:
        if _switched:
            return True
        lib = _library()
        if lib is None or not _none_open(lib):
            return False
        if lib.sqlite3_shutdown() != _SQLITE_OK:
            return False
        _switched = (
            lib.sqlite3_config(_CONFIG_MULTITHREAD) == _SQLITE_OK
            and lib.sqlite3_config(_CONFIG_MEMSTATUS, ctypes.c_int(0)) == _SQLITE_OK
        )
        if not _switched:  # half made: serialized again, as the process was
            lib.sqlite3_config(_CONFIG_SERIALIZED)
        if lib.sqlite3_initialize() != _SQLITE_OK:
            raise RuntimeError("SQLite could not be initialised again")
        return _switched
