"""The daemon's store runs SQLite in multi-thread mode with its memory statistics off.

Each case runs in a fresh interpreter: the mode is the whole process's, and this one's connections
(other tests', pytest's) would keep it as it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# SQLite's count of outstanding allocations: kept only while its memory statistics are on, so 0
# with a connection open means they are off (the switch was made).
_PROBE = """
import ctypes, json, sqlite3, sys, threading
from pathlib import Path
import _sqlite3
from gateway.store.db import Db

lib = ctypes.CDLL(_sqlite3.__file__)
def allocations():
    cur, hi = ctypes.c_int64(), ctypes.c_int64()
    lib.sqlite3_status64(9, ctypes.byref(cur), ctypes.byref(hi), 0)
    return cur.value

path = Path(sys.argv[1])
other = sqlite3.connect(path.with_name("other.db")) if sys.argv[2] == "open-before" else None
store = Db.open(path, group_fsync=sys.argv[3] == "daemon")
store.conn.execute("CREATE TABLE t (x)")
store.conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
total = store.conn.execute("SELECT sum(x) FROM t").fetchone()[0]
refused = []
def use():
    try:
        store.conn.execute("SELECT 1")
    except Exception:  # the store's own check, or sqlite3's
        refused.append(True)
t = threading.Thread(target=use)
t.start()
t.join()
print(json.dumps({"allocations": allocations(), "total": total, "refused": bool(refused)}))
"""


def _probe(tmp_path: Path, before: str, mode: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "smsgw.db"), before, mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_daemons_store_switches_sqlite_to_multi_thread_mode(tmp_path: Path) -> None:
    got = _probe(tmp_path, "none", "daemon")
    assert got["allocations"] == 0  # statistics off: no mutex at each allocation
    assert got["total"] == sum(range(1000))
    assert got["refused"] is True  # one thread per connection, as before


def test_a_connection_already_open_keeps_the_mode_as_it_was(tmp_path: Path) -> None:
    got = _probe(tmp_path, "open-before", "daemon")
    assert isinstance(got["allocations"], int) and got["allocations"] > 0
    assert got["total"] == sum(range(1000))


def test_a_commands_store_leaves_the_mode_alone(tmp_path: Path) -> None:
    got = _probe(tmp_path, "none", "command")
    assert isinstance(got["allocations"], int) and got["allocations"] > 0


# SQLite with its memory statistics off before the daemon's store opens (a build's default, or
# another library's doing): the allocation count is 0 with a connection open, which alone read as
# "none open", and SQLite was shut down under that connection.
_STATISTICS_OFF = """
import ctypes, json, sqlite3
import _sqlite3
from gateway.store.sqlitemode import multi_thread

lib = ctypes.CDLL(_sqlite3.__file__)
lib.sqlite3_shutdown()
lib.sqlite3_config(9, ctypes.c_int(0))
lib.sqlite3_initialize()
open_one = sqlite3.connect(":memory:")
open_one.execute("CREATE TABLE t (x)")
switched = multi_thread()
open_one.execute("INSERT INTO t VALUES (1)")
print(json.dumps({"switched": switched, "rows": open_one.execute("SELECT count(*) FROM t").fetchone()[0]}))
"""


def test_with_the_statistics_already_off_an_open_connection_keeps_the_mode_as_it_was() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _STATISTICS_OFF],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=True,
    ).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got == {"switched": False, "rows": 1}
