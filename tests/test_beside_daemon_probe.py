"""Whether the daemon runs beside a command is asked of the kernel on the lock file itself
(`gateway.store.besidedaemon`, `gateway.statelock.held_by_another`).

Each command's open of the database, and each close, read /proc/locks whole to find the daemon's
`flock`: 0.1 s each with 20,000 locks on the machine (a mail server's, a database's). A real
daemon, a real database file and real processes holding the lock, in PID namespaces of their own
too (where /proc names the holder by another pid).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from gateway import statelock
from gateway.store import besidedaemon
from gateway.store.db import Store
from tests.conftest import free_port
from tests.test_process import start_daemon, write_config
from tests.test_start_check_commands import in_own_pid_namespace

_opened: list[str] = []
_watching: list[bool] = [False]


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _watching[0] and event == "open" and args and isinstance(args[0], str | Path):
        _opened.append(str(args[0]))


sys.addaudithook(_audit)  # cannot be removed: it records only while `_watching` says so


@contextmanager
def files_opened() -> Iterator[list[str]]:
    """Every file this process opens (Python's `open` audit event) while the block runs."""
    _opened.clear()
    _watching[0] = True
    try:
        yield _opened
    finally:
        _watching[0] = False


def autocheckpoint(store: Store) -> int:
    return int(store.db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


async def test_a_command_beside_the_daemon_finds_it_without_reading_proc_locks(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    proc = await start_daemon(config, smtp_port)
    try:
        with files_opened() as opened:
            assert besidedaemon.daemon_runs(db)
        assert opened == [str(db.parent / statelock.LOCK_FILE)]  # the lock file alone, no /proc/locks
        store = Store.open(db)  # as a command opens it
        with closing(store):
            assert autocheckpoint(store) == 0  # beside the daemon: only its checkpoints write the file
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    store = Store.open(db)
    with closing(store):
        assert autocheckpoint(store) == 1000  # no daemon: SQLite's own, as before
    assert not besidedaemon.daemon_runs(db)


def test_a_holder_in_a_pid_namespace_of_its_own_is_seen_and_this_process_is_never_its_own_daemon(
    tmp_path: Path,
) -> None:
    db = tmp_path / "smsgw.db"
    script = (
        "import sys; from pathlib import Path; from gateway import statelock;"
        " statelock.claim(Path(sys.argv[1])); print('held', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [*in_own_pid_namespace(), sys.executable, "-c", script, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert besidedaemon.daemon_runs(db)
        assert statelock.held_by_another(tmp_path / statelock.LOCK_FILE) is True
    finally:
        holder.communicate("", timeout=10)
    assert not besidedaemon.daemon_runs(db)
    with statelock.held(tmp_path):  # this process's own lock, however /proc names its pid
        assert not besidedaemon.daemon_runs(db)
        assert statelock.held_by_another(tmp_path / statelock.LOCK_FILE) is False
    assert statelock.held_by_another(tmp_path / "no-such-lock") is None
