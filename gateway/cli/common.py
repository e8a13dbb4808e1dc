"""What every `smsgw` subcommand shares: the error type, exit codes, finding the config, opening the store."""

from __future__ import annotations

import errno
import os
import sqlite3
from datetime import datetime
from pathlib import Path

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
    raise CliError(
        f"no config file: give --config PATH, set ${CONFIG_ENV}, or create ./config.toml or {SYSTEM_CONFIG}",
        EXIT_CONFIG,
    )


def open_store(cfg: Config, *, must_exist: bool = False) -> Store:
    """The store; with `must_exist` a missing database is refused rather than created empty.

    A mistyped `state_dir` would otherwise create a fresh database there and answer "no messages".
    """
    path = cfg.db_path
    if must_exist and not (path.exists() and path.stat().st_size > 0):
        raise CliError(f"no database at {path} (is state_dir right?)")
    try:
        return Store.open(path, create=True)
    except PermissionError as exc:
        raise CliError(not_writable(path)) from exc
    except sqlite3.OperationalError as exc:
        raise CliError(database_error(path, exc)) from exc


def not_writable(path: Path) -> str:
    return (
        f"database {path} cannot be opened for writing by this user; run the command as the"
        " service's user (e.g. `sudo -u smsgw smsgw ...`) or fix the owner of the state directory"
    )


def database_error(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    if "readonly" in text or "unable to open" in text:
        return not_writable(path)
    return f"database {path}: {text}"


def bind_error(key: str, host: str, port: int, exc: OSError) -> str:
    """A listener that cannot bind, said with the key to change and the usual cause."""
    where = f'{key} = "{host}:{port}"'
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: the port is already in use (another smsgw, the daemon's"
            f" built-in simulator, or a mail server?); see `ss -ltnp 'sport = :{port}'`"
        )
    if exc.errno == errno.EACCES and port < 1024:
        return (
            f"cannot listen on {where}: ports below 1024 need the CAP_NET_BIND_SERVICE capability"
            " (the systemd drop-in systemd/smsgw-low-port.conf grants it) or use a port above 1023"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: no network interface has address {host}"
    return f"cannot listen on {where}: {exc.strerror or exc}"


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def age(seconds: float) -> str:
    """A duration as a person reads it: 45 s, 12 min, 3.5 h, 2.0 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
