"""What every `smsgw` subcommand shares: the error type, exit codes, finding the config, opening the store.

The argument types the subcommands share are `gateway.cli.argtypes`; what a listener that cannot bind
says is `gateway.cli.binderror`.

Every command imports this module before it parses its arguments, so it imports the config and the
store only in the functions that use them: `smsgw --version` and `--help` need neither.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from gateway import statelock
from gateway.sudoline import again_as, nameless, owner_remedy, user_name

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.db import Store

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3  # the systemd unit's RestartPreventExitStatus: restarting cannot fix a config error

CONFIG_ENV = "SMSGW_CONFIG"
SYSTEM_CONFIG = Path("/etc/smsgw/config.toml")


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


class DaemonStarting(CliError):
    """The daemon is in its start, checking or upgrading the database: `smsgw status` says so as
    its state (exit 1, as for any daemon starting), every other command exits 1 with this message."""

    def __init__(self, pid: int, version: str | None, doing: str) -> None:
        who = f"pid {pid}, smsgw {version}" if version else f"pid {pid}"
        super().__init__(
            f"the daemon ({who}) is starting: {doing}; try again when `smsgw status` says it runs"
        )
        self.state = f"starting ({who}): {doing}"


def find_config(given: Path | None, env: dict[str, str] | None = None) -> tuple[Path, str | None]:
    """The config file and, when it was found somewhere an admin may not expect, how.

    Order: --config, $SMSGW_CONFIG, ./config.toml, /etc/smsgw/config.toml — so that admin commands
    work from any directory on an installed machine. A named file that is missing is an error
    (reported when it is read), never a silent fall-through to the next candidate.
    """
    env = os.environ if env is None else env
    if given is not None:
        return given, None
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]), f"from ${CONFIG_ENV}"
    local = Path("config.toml")
    if local.exists():
        return local, None  # what the walkthrough uses: not worth a line on every command
    if SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG, "no ./config.toml here"
    try:
        here = str(local.absolute())
    except OSError:  # the directory was removed under the shell
        here = "./config.toml"
    # A usage error (2), as README's exit statuses have it: most often a command run outside the
    # directory of the config (the clone's, for the walkthrough), which `status` reported as 3, "not
    # running", about a daemon running fine.
    raise CliError(
        f"no config file: none in this directory ({here}), ${CONFIG_ENV} not set, none at"
        f" {SYSTEM_CONFIG}. Run smsgw in the directory that holds its config.toml (the clone's, for the"
        f" shipped one), or give --config PATH (or set ${CONFIG_ENV})",
        EXIT_USAGE,
    )


def open_store(cfg: Config, *, must_exist: bool = False) -> Store:
    """The store; with `must_exist` a missing database is refused rather than created empty.

    A mistyped `state_dir` would otherwise create a fresh database there and answer "no messages".
    Without it (`account add`) one is created only in a state directory that exists (install-service
    and the daemon's first start make it): in a mistyped one every later command worked against a
    database the daemon never read, an opt-out the admin believed in place among them.
    """
    from gateway.store.db import Store, StoreUnusable
    from gateway.store.schema import SCHEMA_VERSION
    from gateway.store.walcheck import refuse_lost_commits

    path = cfg.db_path
    refuse_root_in_service_dir(cfg)
    use_database(cfg)
    missing = not (path.exists() and path.stat().st_size > 0)
    if missing and (must_exist or not cfg.state_dir.exists()):
        if cfg.state_dir.exists() and not cfg.state_dir.is_dir():
            # configcheck (its certificate checks import the cryptography package) only where an
            # error is worded: every command opens the store, and it cost each some 40 ms of CPU.
            from gateway.configcheck import state_dir_problem

            raise CliError(state_dir_problem(cfg) or f"no database at {path}", EXIT_CONFIG)
        raise no_database(path)
    try:
        refuse_lost_commits(path, time.time())  # before SQLite's first read hides a damaged WAL
    except StoreUnusable as exc:
        raise CliError(str(exc), EXIT_CONFIG) from exc
    if (older := older_schema_under_a_daemon(cfg)) is not None:
        raise older
    from gateway.cli.upgradelock import upgrading_alone

    try:
        # No integrity check: the daemon's start and `smsgw backup` read the whole file for it;
        # every command doing so made `smsgw status` take seconds to minutes on a large database.
        # An upgrade holds the daemon's lock while it runs: no daemon starting upgrades beside it.
        with upgrading_alone(cfg):
            store = Store.open(path, create=True, zone=ZoneInfo(cfg.gateway.timezone), integrity=False)
    except StoreUnusable as exc:  # e.g. missing where one existed: the status `run` exits with
        raise CliError(str(exc), EXIT_CONFIG) from exc
    except sqlite3.Error as exc:
        raise CliError(database_error(path, exc)) from exc
    except OSError as exc:
        # The state directory cannot hold the database (not writable here, or not a directory):
        # check-config's words for it; else the database file itself is the problem.
        from gateway.configcheck import state_dir_problem

        problem = state_dir_problem(cfg)
        if problem is not None:
            raise CliError(problem, EXIT_CONFIG) from exc
        if isinstance(exc, PermissionError):
            raise CliError(not_writable(path)) from exc
        raise CliError(f"database {path}: {exc.strerror or exc}") from exc
    if missing:
        print(f"smsgw: created a new, empty database at {path}", file=sys.stderr)
    elif (was := store.db.upgraded_from) is not None:
        from gateway import __version__

        # A command upgrades a stopped daemon's database as its start would: said, because the
        # previous version can no longer open it and the daemon's log then holds no record of it.
        print(
            f"smsgw: upgraded the database {path} from schema version {was} to {SCHEMA_VERSION}"
            f" (smsgw {__version__}); an earlier smsgw can no longer open it (restore a backup"
            " taken before to go back)",
            file=sys.stderr,
        )
    return store


def use_database(cfg: Config) -> None:
    """Mark the database in use by this command before it is opened, so that no `smsgw restore`
    swaps it meanwhile (`gateway.statelock`); refused while one does."""
    try:
        statelock.use_database(cfg.state_dir)
    except statelock.DatabaseBeingRestored as exc:
        raise CliError(str(exc)) from None


def no_database(path: Path) -> CliError:
    """The error of a command that needs the database at `path`, which is missing or empty: what to
    restore when one existed there (`gateway.store.marker`), else a hint at a mistyped state_dir."""
    from gateway.store.db import StoreUnusable
    from gateway.store.marker import refuse_lost

    try:
        refuse_lost(path)
    except StoreUnusable as exc:
        return CliError(str(exc), EXIT_CONFIG)
    return CliError(f"no database at {path} (is state_dir right?)")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user (the service's)
        return True
    return True


def running_pid(cfg: Config) -> int | None:
    """The pid of a daemon running on this state directory: the holder of its lock (`statelock`).

    The status file's pid is not proof: a daemon still migrating has written none, and a killed
    one's (or a copied state directory's) may name a live process that is no daemon of this state
    directory. It is read only where the lock file cannot be (another user's state directory), and
    for the pid of a holder that has not written it into the lock file yet.
    """
    from gateway.statusfile import read_status

    status = read_status(cfg.state_dir)
    try:
        holder = statelock.daemon_pid(cfg.state_dir)
    except OSError:
        holder = -1  # cannot tell: the status file alone
    if holder is None or holder == os.getpid():
        return None
    if holder > 0:
        return holder
    try:
        pid = int(status["pid"]) if status else 0
    except (KeyError, TypeError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid() or not pid_alive(pid):
        return None
    return pid


def older_schema_under_a_daemon(cfg: Config) -> CliError | None:
    """Why a command of this version may not open the database: it is older than this smsgw's and
    a daemon runs on it, which is then an older smsgw, or a daemon in its start, about to upgrade it.

    Upgraded under an older daemon by a `status` (every command migrates), the old daemon's own
    commands refused the database, a restart of it exited with status 3 that the unit does not
    restart, and there was no way back but a backup. A daemon of this version in its start
    (checking a large database, then upgrading it) was taken for an older one, and restarting it
    as told began the check again; and a command in its first moments ran the upgrade itself,
    leaving the daemon's log without it. Such a daemon is told by its start file (its pid, what it
    does), or, before it has written one, by holding the lock with no status file of its own.
    """
    from gateway.cli.statusdaemon import schema_of
    from gateway.statusfile import read_starting, read_status, starting_words
    from gateway.store.schema import SCHEMA_VERSION

    # None: planted (never read; Store.open names it), none, or not readable here (opening it says why)
    if (version := schema_of(cfg.db_path)) is None or version >= SCHEMA_VERSION:
        return None
    if (pid := running_pid(cfg)) is None:
        return None
    start = read_starting(cfg.state_dir)
    status = read_status(cfg.state_dir)
    if start is not None and start.get("pid") == pid and not _serving_since(status, pid, start):
        doing = starting_words(start, version) or "opening the database"
        return DaemonStarting(pid, start.get("version"), doing)
    if status is None or status.get("pid") != pid:
        return DaemonStarting(pid, None, f"database {cfg.db_path} is at schema version {version}")
    from gateway.cli.restartwords import how_to_restart

    return CliError(
        f"database {cfg.db_path} is at schema version {version}, older than this smsgw's ({SCHEMA_VERSION}),"
        f" and the daemon running on it (pid {pid}) is an older smsgw: restart it on this version first"
        f" ({how_to_restart(cfg.state_dir, pid)}), which upgrades the database"
    )


def _serving_since(status: dict[str, Any] | None, pid: int, start: dict[str, Any]) -> bool:
    """Whether the lock holder's status file is newer than the start file: the start file is then
    a leftover of a start killed before it ended, and the pid a new process's (in a container the
    daemon is always pid 1), which an older daemon serving meanwhile never removes."""
    if status is None or status.get("pid") != pid:
        return False
    try:
        return float(status.get("updated_at", 0)) >= float(start.get("updated_at", 0))
    except (TypeError, ValueError):
        return False


def refuse_root_in_service_dir(cfg: Config) -> None:
    """Root may not write into a state directory that belongs to the service's user.

    SQLite creates the database's -wal and -shm beside it when none are open, and `billing run`
    writes the month's files: made by root, they lock the daemon (user smsgw) out of its own
    database or its next bill. `sudo smsgw ...` is the natural thing to type, so it is refused
    with the command to type instead. Exit 2, as for a command given wrong: the daemon's state is
    not the trouble, and `smsgw status` exiting 1 read as "running with trouble" to monitoring."""
    if os.geteuid() != 0:
        return
    try:
        owner = cfg.state_dir.stat().st_uid
    except OSError:
        return  # none yet: whoever runs first makes it
    if owner == 0:
        return
    name = user_name(owner)
    if name is None:  # sudo refuses a uid with no name ('#54321': runas_allow_unknown_id is off)
        raise CliError(
            f"state_dir {nameless(cfg.state_dir, owner)}, then run this as that user; files root"
            " makes there would lock the daemon out",
            EXIT_USAGE,
        )
    raise CliError(
        f"state_dir {cfg.state_dir} belongs to user {name}: run this as that user"
        f" (`{again_as(name)}`); files root makes there would lock the daemon out",
        EXIT_USAGE,
    )


def not_writable(path: Path) -> str:
    """The database's words: the file itself where it is what this user may not write (its mode or
    owner to fix, not its directory's), else its directory."""
    from gateway.store.opening import not_writable as blocking

    blocked = blocking(path) or path.parent
    other = "fix the owner of the state directory" if blocked == path.parent else "fix the owner"
    return (
        f"database {path} cannot be opened for writing by this user;"
        f" {owner_remedy(blocked, verb='run the command', other=other)}"
    )


def database_error(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    if "readonly" in text or "unable to open" in text:
        return not_writable(path)
    if "locked" in text or "busy" in text:
        # Only after the whole busy wait: someone holds the write lock for longer than a write takes.
        return f"database {path}: {text}: the daemon or another smsgw command is writing; try again"
    if "disk is full" in text:
        from gateway.cli.diskroom import disk_room

        return f"database {path}: {text}: {disk_room(path.parent) or 'free space on its filesystem'}"
    if "disk i/o error" in text.lower():  # a full disk, where SQLite could not grow the -shm (a backup)
        from gateway.cli.diskroom import room_note

        return f"database {path}: {text}{room_note(path.parent, exc, ': ')}"
    return f"database {path}: {text}"


# The zone every time the CLI prints is read in; set once the config is loaded (`use_zone`).
_zone: ZoneInfo | None = None


def use_zone(cfg: Config) -> None:
    """Print times in `[gateway] timezone`, as the panel, the billing files and the mails do.

    The process's own zone is whatever the host or the admin's shell says (often UTC on a
    server): a time in it would not match the same event in the panel or a customer's mail.
    """
    global _zone
    _zone = ZoneInfo(cfg.gateway.timezone)


def say_zone(rows: Sequence[object], empty: str) -> None:
    """Before a list of times: that they are in `[gateway] timezone`, which the machine's clock
    (often UTC) and the log lines (UTC) are not. On stderr, as the config found is: a script that
    reads the list's lines gets only them. With no rows, `empty` goes to stdout instead."""
    if not rows:
        print(empty)
        return
    zone = _zone.key if _zone is not None else "the machine's zone"
    print(f"smsgw: times in {zone} ([gateway] timezone)", file=sys.stderr)


def when(ts: float | None) -> str:
    """A time in the panel's format, in the configured zone (the machine's before a config is read)."""
    return datetime.fromtimestamp(ts, _zone).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_LEVEL_HELP = f"write log lines of this level and above: {', '.join(LOG_LEVELS)} (default INFO)"


def loop_runner() -> Callable[..., Any]:
    """uvloop's runner where installed: its loop costs less CPU per message than asyncio's."""
    try:
        import uvloop
    except ImportError:
        import asyncio

        return asyncio.run
    return uvloop.run


def since_time(cfg: Config, value: str) -> float:
    """`7d`, `12h`, `30m` ago, or a date `YYYY-MM-DD[ HH:MM]` in `[gateway] timezone`.

    The zone the listing prints its times in (and the panel and the mails use): a date read in the
    host's zone, often UTC on a server, would start the list hours away from the day the admin meant.
    """
    units = {"d": 86400, "h": 3600, "m": 60}
    count = value[:-1]
    if count.isascii() and count.isdecimal() and value[-1:] in units:
        return time.time() - int(count) * units[value[-1]]
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise CliError(f"--since {value!r}: give 7d, 12h, 30m or a date YYYY-MM-DD", EXIT_USAGE) from exc
    if moment.tzinfo is None:  # an explicit offset (2026-03-01T10:00+01:00) is taken as written
        moment = moment.replace(tzinfo=ZoneInfo(cfg.gateway.timezone))
    return moment.timestamp()
