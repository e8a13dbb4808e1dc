"""One daemon per state directory, and no command on a database that a restore replaces.

Two daemons on one database would each claim and send from the same queue, each run its own group
commit and outbox, and each believe its caches: the design has one writer. Ports do not prevent it
(a second config may name other ports), so the daemon holds an exclusive `flock` on a file in the
state directory for as long as it runs. The kernel drops the lock when the process ends, however it
ends, so a crash never leaves a stale lock behind; the file names the holder's pid for the message.
A second lock (`use_database`) is held by the commands, which run beside the daemon.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "smsgw.pid"


class StateDirBusy(RuntimeError):
    """Another daemon runs on this state directory."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        self.pid = pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"smsgw is already running ({who}) with state_dir {state_dir}; see `smsgw status`,"
            " stop it before starting another"
        )


@contextmanager
def held(state_dir: Path) -> Iterator[None]:
    """Hold the state directory's lock while the block runs; StateDirBusy if another holds it."""
    fd = _open_lock(state_dir / LOCK_FILE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateDirBusy(state_dir, _pid_in(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # drops the lock (the file stays: removing it would race the next holder)


def daemon_pid(state_dir: Path) -> int | None:
    """The pid of the process holding the state directory's lock (0 where its file names none yet),
    None when nothing holds it: whether a daemon runs, as the kernel tells it.

    A status file's pid says less: a daemon migrating a large database at its start has written
    none yet, and the pid of one killed (or of a copied state directory) may now be another
    process's. OSError when the lock file cannot be opened here (another user's directory): the
    caller then has only the status file to go by."""
    try:
        fd = os.open(state_dir / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None  # no daemon ever ran here
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_in(fd) or 0
        return None
    finally:
        os.close(fd)  # drops the shared lock if taken


# ---- the database's users, for `smsgw restore` ------------------------------------------------------

# The daemon's lock keeps daemons out, but a command (`billing run`, `backup`, `outbox list`) runs
# beside the daemon and so cannot share its lock. Each command holds this one shared while it has the
# database open; restore holds it exclusively. A command that kept the old file open across the swap
# would write into the file set aside, or into the restored one through a WAL of the old file's pages.
USE_FILE = "smsgw.inuse"
_uses: dict[Path, int] = {}  # state directory -> the descriptor whose shared lock this process holds


class DatabaseBeingRestored(RuntimeError):
    """`smsgw restore` is replacing the database: no command may open it until it is done."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        self.pid = pid
        who = f" (pid {pid})" if pid else ""
        super().__init__(
            f"smsgw restore{who} is replacing the database in {state_dir}; run this again once it is done"
        )


class DatabaseInUse(RuntimeError):
    """Other smsgw commands have the database open; `users` says which, as far as /proc tells."""

    def __init__(self, users: list[str]) -> None:
        self.users = users
        super().__init__("; ".join(users) if users else "another smsgw command")


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)  # never through a link


def _pid_in(fd: int) -> int | None:
    """The pid its holder wrote into a lock file, if it reads as one."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def use_database(state_dir: Path) -> None:
    """Hold the database's shared lock until `release_database` or the end of the process.

    Taken before the database is first opened; DatabaseBeingRestored while a restore runs. Where the
    file cannot be opened (no state directory yet, another user's directory, a link put in its place),
    nothing is held: the open that follows says what is wrong, and a restore refuses to run there."""
    key = state_dir.absolute()
    if key in _uses:
        return
    try:
        fd = _open_lock(state_dir / USE_FILE)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _pid_in(fd)
        os.close(fd)
        raise DatabaseBeingRestored(state_dir, pid) from None
    _uses[key] = fd


def release_database() -> None:
    """Drop every shared lock of `use_database`: the command is over (a process that runs several,
    as tests do, would otherwise keep the database "in use" for a later restore)."""
    while _uses:
        os.close(_uses.popitem()[1])


@contextmanager
def database_alone(state_dir: Path, wait: float) -> Iterator[None]:
    """Hold the database's lock exclusively while the block runs, waiting up to `wait` seconds for
    commands that have it open to end (a monitoring `status` takes a moment); DatabaseInUse else."""
    release_database()  # this process's own commands are done with it
    fd = _open_lock(state_dir / USE_FILE)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DatabaseInUse(_users(fd)) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
        os.ftruncate(fd, 0)  # no pid of a finished restore named to the next refused command
    finally:
        os.close(fd)


def _users(fd: int) -> list[str]:
    """The processes holding a lock on the file of `fd`, each as `pid N (smsgw COMMAND)`, from
    /proc/locks (Linux); empty where it cannot be read."""
    st = os.fstat(fd)
    here = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    locks = [line.split() for line in lines]  # `1: FLOCK  ADVISORY  READ  1234 08:01:5678 0 EOF`
    pids = sorted({int(p[4]) for p in locks if len(p) > 5 and p[1] == "FLOCK" and p[5] == here})
    return [f"pid {pid}{_command(pid)}" for pid in pids if pid != os.getpid()]


def _command(pid: int) -> str:
    """` (smsgw billing run)` for the process `pid`: its arguments after the program, less --config."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode("utf-8", "replace").split("\0")[:-1]
    except OSError:
        return ""
    for i, arg in enumerate(argv):
        if arg.endswith(("smsgw", "gateway.cli")):
            argv = argv[i + 1 :]
            break
    words: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in ("-c", "--config"):
            next(args, None)  # its path
        elif not arg.startswith("--config="):
            words.append(arg)
    return f" (smsgw {' '.join(words)[:60]})" if words else ""
