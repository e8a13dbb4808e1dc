"""The smsgw to name in a command the CLI tells an admin to type as the service's user.

`sudo -u smsgw smsgw ...` failed with "command not found": sudo runs with its `secure_path`, which
has no virtualenv's bin directory in it, so the command must name the program by its full path."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

# Where the README installs it: said when the running program cannot be found by a path of its own.
DOCUMENTED = "/opt/smsgw/venv/bin/smsgw"


def installed_command() -> str:
    """The full path of the smsgw running now: its own script as started, else the script of this
    interpreter's environment, else one on PATH, else the documented place."""
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if started is not None and started.name == "smsgw" and started.is_file():
        return os.path.abspath(started)  # not resolved: a venv's script path is what sudo must run
    beside = Path(sys.executable).parent / "smsgw"
    if beside.is_file():
        return str(beside)
    found = shutil.which("smsgw")
    return os.path.abspath(found) if found else DOCUMENTED


def as_user(user: str, rest: str, command: str | None = None) -> str:
    """`rest` (the command's arguments) as the line to type to run it as `user`; the program quoted
    (a venv under "/srv/my venv" made the line run "/srv/my")."""
    return f"sudo -u {user} {shlex.quote(command or installed_command())} {rest}"
