"""The unit `smsgw install-service` writes, and how it writes any of its files.

The unit's `ReadWritePaths=` follows the config the service runs with, the one on disk (a re-run
without `--force` keeps it). A config that cannot be read says nothing about those directories:
rewriting the unit then dropped them, and once the admin fixed the config the daemon could not
write its billing directory until install-service ran again. Such a re-run leaves the unit there
as it is, as `gateway.cli.lowport` leaves the low-port drop-in.

A file whose text is already what would be written is left alone and not said as written: a
re-run that changes nothing says so by saying nothing about it.
"""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config import Config

UNIT = Path("smsgw.service")


def write_file(path: Path, text: str, mode: int, *, keep: bool) -> bool:
    """Write `path` unless it exists and `keep`, or already holds `text`; True when written."""
    if keep and path.exists():
        print(f"kept {path} (exists; --force replaces it)")
        return False
    try:
        same = path.read_text() == text
    except (OSError, UnicodeDecodeError):  # missing, or what writing it says better (under a file)
        same = False
    if same:
        if path.stat().st_mode & 0o7777 != mode:
            path.chmod(mode)
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    print(f"wrote {path}")
    return True


def config_on_disk(config: Path) -> Config | None:
    """The config the service will run with, a kept one too: which directories the unit opens and
    whether it needs the low-port drop-in follow it, not this run's flags."""
    from gateway.config import ConfigError, parse_config

    try:
        return parse_config(config.read_text(), source=str(config), base_dir=Path("/etc/smsgw"))
    except (OSError, ConfigError) as exc:
        print(f"warning: {exc}")
        return None


def _writable(cfg: Config, root: Path, user: str, dry: bool) -> list[Path]:
    """The directories outside /var/lib/smsgw the config on disk has the daemon write: made here,
    owned by the service's user, since systemd refuses to start
    a unit whose ReadWritePaths= names a missing one."""
    from gateway.cli.servicefiles import writable_dirs

    found = writable_dirs(cfg)
    for setting, directory in found:
        made = root / directory.relative_to("/")
        made.mkdir(parents=True, exist_ok=True)
        if not dry:  # never one of the system's (`writable_dirs` refuses those)
            os.chown(made, pwd.getpwnam(user).pw_uid, grp.getgrnam(user).gr_gid)
        print(f"{directory}: {setting}, writable for the service (ReadWritePaths=)")
    return [directory for _, directory in found]


def place_unit(units: Path, cfg: Config | None, command: str, user: str, root: Path, dry: bool) -> None:
    """Write the unit for the config on disk (`cfg`); with none that could be read, an existing unit
    stays as it is (see the module's doc), and a first one opens no directory outside the state
    directory until a run with the config fixed."""
    from gateway.cli.servicefiles import render_unit

    path = units / UNIT
    if cfg is None and path.exists():
        print(
            f"left {path} as it is (the config could not be read to see which directories it writes);"
            " run install-service again once check-config passes"
        )
        return
    if cfg is None:
        print(
            "the unit opens no directory outside /var/lib/smsgw until install-service runs again"
            " with a config that loads"
        )
    writable = _writable(cfg, root, user, dry) if cfg is not None else []
    write_file(path, render_unit(command, "/etc/smsgw/config.toml", user, writable), 0o644, keep=False)
