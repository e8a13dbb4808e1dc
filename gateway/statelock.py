"""One daemon per state directory, and no command on a database that a restore replaces.

Two daemons on one database would each claim and send from the same queue, each run its own group
commit and outbox, and each believe its caches: the design has one writer. Ports do not prevent it
(a second config may name other ports), so the daemon holds an exclusive `flock` on a file in the
state directory for as long as it runs. The kernel drops the lock when the process ends, however it
ends, so a crash never leaves a stale lock behind; the file names the holder's pid for the message.
A second lock (`use_database`) is held by the commands, which run beside the daemon.

A command that is about to upgrade the database's schema holds the daemon's lock for as long as the
upgrade takes (`upgrade_lock`), its file saying so: a daemon starting meanwhile waits for it (`held`
with `wait`) instead of upgrading the same file beside it, and another command refuses. Without it a
`smsgw status` run in a starting daemon's first second, before the daemon held its lock, ran half the
migrations and the daemon the other half.
"""

from __future__ import annotations

import fcntl
import os
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Protocol

from gateway.store.proclocks import command_line, flock_holders
from gateway.sudoline import without_config

LOCK_FILE = "smsgw.pid"
UPGRADING = "upgrading"  # the lock file's second line while a command upgrades: `upgrading smsgw status`
UPGRADE_WAIT_SECONDS = 3600.0  # how long a starting daemon waits for a command's upgrade
_WRITE_WAIT_SECONDS = 1.0  # a holder that has the lock but has not written its pid yet
# The lock file read whole: a pid, and a command's words of about 60 characters of up to 4 bytes each
# (read to its 200th byte, such words lost their line's end, and a start took the holder for a daemon).
_HOLDER_BYTES = 4096
_claimed: dict[Path, int] = {}  # state directory -> the lock `claim` took early for a `held` to come
_mine: set[tuple[int, int]] = set()  # (device, inode) of each lock file this process holds locked


class StateDirBusy(RuntimeError):
    """Another daemon runs on this state directory."""

    def __init__(self, state_dir: Path, pid: int | None, upgrading: str | None = None) -> None:
        self.pid = pid
        self.upgrading = upgrading  # the command's words when a command upgrading the database holds it
        who = f"pid {pid}" if pid else "another process"
        if upgrading is not None:
            super().__init__(
                f"{who} ({upgrading}) is upgrading the database in {state_dir}; try again when it is done"
            )
            return
        super().__init__(
            f"smsgw is already running ({who}) with state_dir {state_dir}; see `smsgw status`,"
            " stop it before starting another"
        )


class UpgradeOutlasted(StateDirBusy):
    """A starting daemon waited UPGRADE_WAIT_SECONDS for a command's upgrade, which still runs."""

    def __init__(self, state_dir: Path, pid: int | None, upgrading: str, waited: float) -> None:
        super().__init__(state_dir, pid, upgrading)
        self.args = (
            f"pid {pid} ({upgrading}) has been upgrading the database in {state_dir} for {waited / 60:.0f}"
            " min; the start gives up waiting for it (systemd starts it again)",
        )


class UpgradeWaiter(Protocol):
    """Told while a start waits for a command's upgrade (`held`): systemd and the log hear of it."""

    def waiting(self, pid: int | None, upgrading: str) -> None: ...

    def waited(self) -> None: ...


@contextmanager
def held(state_dir: Path, *, wait: float = 0.0, waiter: UpgradeWaiter | None = None) -> Iterator[None]:
    """Hold the state directory's lock while the block runs; StateDirBusy if another holds it.

    With `wait`, a command upgrading the database (`upgrade_lock`) is waited for, up to `wait`
    seconds: the start then finds the schema current instead of refusing as if a daemon ran. A lock
    this process took by `claim` is the one held (once)."""
    fd = _claimed.pop(state_dir.absolute(), None)
    if fd is None:
        fd = _acquire(state_dir, wait, waiter)
    try:
        yield
    finally:
        _mine.discard(_identity(fd))
        os.close(fd)  # drops the lock (the file stays: removing it would race the next holder)


def claim(state_dir: Path, *, wait: float = 0.0, waiter: UpgradeWaiter | None = None) -> None:
    """Take the state directory's lock now, for the `held` of this process that comes later.

    `smsgw run` takes it before importing the daemon (a second or two on a small machine): a command
    run in that time took the database for one no daemon used and upgraded it itself."""
    key = state_dir.absolute()
    if key not in _claimed:
        _claimed[key] = _acquire(state_dir, wait, waiter)


def _acquire(state_dir: Path, wait: float, waiter: UpgradeWaiter | None) -> int:
    fd = _open_lock(state_dir / LOCK_FILE)
    started = time.monotonic()
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            pid, upgrading = _holder_in(fd)
            now = time.monotonic() - started
            if pid is None and now < _WRITE_WAIT_SECONDS:
                time.sleep(0.01)  # it has just taken the lock: what it is, its file says in a moment
                continue
            if upgrading is None or wait <= 0:
                os.close(fd)
                raise StateDirBusy(state_dir, pid, upgrading) from None
            if now >= wait:
                os.close(fd)
                raise UpgradeOutlasted(state_dir, pid, upgrading, now) from None
            if waiter is not None:
                waiter.waiting(pid, upgrading)
            waited = True
            time.sleep(0.05)
    _name_holder(fd, f"{os.getpid()}\n", state_dir / LOCK_FILE)
    _mark_held(fd)
    if waited and waiter is not None:
        waiter.waited()
    return fd


def upgrade_lock(state_dir: Path, command: str) -> int:
    """The state directory's lock for a command about to upgrade the database, its file naming the
    command (`end_upgrade` drops it); StateDirBusy (its `upgrading` set for another command's
    upgrade) where a daemon or another command holds it."""
    fd = _open_lock(state_dir / LOCK_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        deadline = time.monotonic() + _WRITE_WAIT_SECONDS
        while (holder := _holder_in(fd))[0] is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.close(fd)
        raise StateDirBusy(state_dir, *holder) from None
    _name_holder(fd, f"{os.getpid()}\n{UPGRADING} {command}\n", state_dir / LOCK_FILE)
    _mark_held(fd)
    return fd


def _name_holder(fd: int, text: str, path: Path) -> None:
    """The lock's file names its holder; on a write that fails (a full disk) the lock goes with the
    error. Kept, it made the caller's next try meet its own lock, and a start on a full disk said
    "smsgw is already running (another process)"."""
    try:
        _write_whole(fd, text, path)
    except OSError:
        os.close(fd)
        raise


def _write_whole(fd: int, text: str, path: Path) -> None:
    """`text` as the whole of the lock file `path`, open on `fd`. Its error names the file: `smsgw
    restore` on a full disk said only "No space left on device", no file and no room left."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def end_upgrade(fd: int) -> None:
    """The upgrade is over: the lock goes, and its file no longer says a command upgrades."""
    try:
        os.ftruncate(fd, 0)
    finally:
        _mine.discard(_identity(fd))
        os.close(fd)


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _mark_held(fd: int) -> None:
    """Remember the lock as this process's, and put an OFD write lock beside the `flock`, which
    another process can test for without taking anything (`held_by_another`). Where the kernel has
    no OFD locks (not Linux, before 3.15) the `flock` alone holds and no command sees the holder."""
    _mine.add(_identity(fd))
    with suppress(AttributeError, OSError):
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _whole_file(fcntl.F_WRLCK))


def _whole_file(kind: int) -> bytes:
    """Linux's `struct flock` (l_type, l_whence, l_start, l_len, l_pid) for the whole file."""
    return struct.pack(_FLOCK, kind, os.SEEK_SET, 0, 0, 0)


_FLOCK = "hhxxxxqqi4x"


def held_by_another(lock_file: Path) -> bool | None:
    """Whether another process holds the state directory's lock, asked of the kernel without taking
    anything (F_OFD_GETLK on the OFD lock `_mark_held` puts beside the `flock`); None where it cannot
    tell (no lock file, not Linux).

    /proc/locks told it before, read whole at every command's open of the database: 0.1 s with
    20,000 locks on the machine. A shared `flock` taken to look, as `daemon_pid` does, would make a
    daemon starting in that moment refuse as if another one ran. No pid is read either way: the
    holder is this process when `holds` says so, whatever PID namespace /proc was mounted in."""
    try:
        fd = os.open(lock_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if holds(os.fstat(fd)):
            return False  # OFD locks conflict across descriptors of one process too
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _whole_file(fcntl.F_WRLCK))
    except (AttributeError, OSError):
        return None
    finally:
        os.close(fd)
    return struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK


def holds(lock_file: os.stat_result) -> bool:
    """Whether this process holds the lock on the file `lock_file` is the stat of (the daemon, or a
    command upgrading the database), known here: /proc/locks names the holder by its pid in the PID
    namespace of the /proc mounted, which is not always this process's own."""
    return (lock_file.st_dev, lock_file.st_ino) in _mine


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
            pid, upgrading = _holder_in(fd)
            return None if upgrading is not None else pid or 0  # a command upgrading is no daemon
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
    return _holder_in(fd)[0]


def _holder_in(fd: int) -> tuple[int | None, str | None]:
    """The pid its holder wrote into a lock file (its first line), and the command's words when the
    holder is a command upgrading the database (`upgrade_lock`)."""
    lines = os.pread(fd, _HOLDER_BYTES, 0).decode("utf-8", "replace").split("\n")
    pid = int(lines[0]) if lines[0].strip().isdigit() else None
    second = lines[1].strip() if len(lines) > 2 else ""  # only a whole line: one being written may be cut
    if second == UPGRADING or second.startswith(UPGRADING + " "):
        return pid, second[len(UPGRADING) :].strip() or "an smsgw command"
    return pid, None


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
        _write_whole(fd, f"{os.getpid()}\n", state_dir / USE_FILE)
        yield
        os.ftruncate(fd, 0)  # no pid of a finished restore named to the next refused command
    finally:
        os.close(fd)


def _users(fd: int) -> list[str]:
    """The processes holding a lock on the file of `fd`, each as `pid N (smsgw COMMAND)`, from
    /proc/locks (Linux); empty where it cannot be read."""
    return [f"pid {pid}{_command(pid)}" for pid in flock_holders(fd) or () if pid != os.getpid()]


def _command(pid: int) -> str:
    """` (smsgw billing run)` for the process `pid`: its arguments after the program, less --config."""
    words = process_words(pid)
    return f" (smsgw {words})" if words else ""


def process_words(pid: int) -> str:
    """`billing run` for the process `pid` (at most 60 characters), empty where /proc does not tell."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode("utf-8", "replace").split("\0")[:-1]
    except OSError:
        return ""
    for i, arg in enumerate(argv):
        if arg.endswith(("smsgw", "gateway.cli")):
            return command_words(argv[i + 1 :])
    return command_words(argv)


def command_words(argv: list[str]) -> str:
    """`billing run` of an smsgw command's arguments, less --config as the CLI's parser reads it
    (`gateway.sudoline.without_config`): about 60 characters, as shell words (a text's line break
    joined raw broke the line of the message naming the holder)."""
    return command_line(without_config(argv)[0], 60)
