"""The line an admin types to run this very command again as the service's user, where a file or
directory this user may not write or read stopped it (`gateway.configcheck`, `gateway.store.opening`).

Those hints said `(sudo -u smsgw ...)`: no program, no config, no command, so an admin copying one
ran nothing, and a state directory owned by a user with no name (a uid from another machine's
backup) was named by a bare number, which `sudo -u` reads as a user name. Here the line names the
program by its full path (`gateway.cli.commandpath`: sudo's PATH has no venv in it), the config by
its full path (sudo drops $SMSGW_CONFIG, and the service's user may not enter the directory a
relative path starts from) and the command's own words.
"""

from __future__ import annotations

import os
import pwd
import shlex
import sys
from pathlib import Path

from gateway.cli.commandpath import as_user

SERVICE_USER = "smsgw"  # install-service's default user: named where no owner tells another
VALUED_OPTIONS = ("--log-level",)  # the options before the command that take a value, but the config
# What the process was started as when its arguments are smsgw's: the script, or `python -m gateway.cli`.
_PROGRAMS = ("smsgw", *(os.path.join("gateway", "cli", name) for name in ("__main__.py", "main.py")))


def sudo_name(uid: int) -> str:
    """The user `sudo -u` takes for `uid`: its name, or `#uid` for a uid with no name (sudo reads a
    bare number as a name), quoted, as a shell takes a word starting with `#` for a comment."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return shlex.quote(f"#{uid}")


def service_user(path: Path) -> str:
    """Whom to run as to use `path`: its owner (the state directory's is the service's user, who
    made it), or SERVICE_USER where root or this very user owns it, neither of them the answer."""
    try:
        uid = path.stat().st_uid
    except OSError:
        return SERVICE_USER
    return SERVICE_USER if uid in (0, os.geteuid()) else sudo_name(uid)


def again_as(user: str, argv: list[str] | None = None) -> str:
    """`sudo -u USER '/full/path/smsgw' --config '/full/config.toml' COMMAND...`: this process's
    command (`argv`, default its own) as `user`; `...` for the command where the process is no
    smsgw command (one run in another program), as the CLI's other hints say it."""
    argv = sys.argv if argv is None else argv
    if not argv or not argv[0].endswith(_PROGRAMS):
        return as_user(user, "...")
    words, config = _without_config(argv[1:])
    if config is None:
        config = _found_config()
    named = ["--config", os.path.abspath(config)] if config else []
    return as_user(user, shlex.join([*named, *words]))


def _without_config(args: list[str]) -> tuple[list[str], str | None]:
    """The command's words without its config option, and the config it names (the last, as argparse
    takes it), or None. `-c` only before the command, as the parser reads it: after it, a text may
    start with "-c"; `--config` anywhere (`gateway.cli.commands.config_after`)."""
    words: list[str] = []
    config: str | None = None
    before = True  # the command's name not met yet
    rest = iter(args)
    for arg in rest:
        if arg == "--config" or (before and arg == "-c"):
            config = next(rest, config)
        elif arg.startswith("--config="):
            config = arg.partition("=")[2]
        elif before and arg.startswith("-c") and not arg.startswith("--"):
            config = arg[2:]  # `-c/etc/smsgw/config.toml`
        else:
            words.append(arg)
            if before and arg in VALUED_OPTIONS:
                words += [value for value in (next(rest, None),) if value is not None]
            before = before and arg.startswith("-")
    return words, config


def _found_config() -> str | None:
    """The config this command found without being given one ($SMSGW_CONFIG, ./config.toml, the
    system's), as `gateway.cli.common.find_config` finds it; None where none is found."""
    from gateway.cli.common import CliError, find_config

    try:
        return str(find_config(None)[0])
    except CliError:
        return None
