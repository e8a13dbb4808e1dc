"""Whether the service can run the program a unit's `ExecStart` names: `smsgw install-service`
refuses a unit the service could not start.

The unit's ProtectHome=yes hides the home directories from the service, so an smsgw installed in
one (pip --user, pyenv, a venv there) failed to start with 203/EXEC and nothing had said why. Kept
apart from `gateway.cli.service`, which writes the files, because this only reads the filesystem.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from gateway.cli.common import EXIT_USAGE, CliError


def own_command() -> str:
    """How systemd should start this same smsgw, as shell words (as `--exec` is given): the venv's
    script beside this interpreter if present, each word quoted where it needs it."""
    script = Path(sys.executable).parent / "smsgw"
    return shlex.join([str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"])


# What the unit's ProtectHome=yes hides from the service: empty directories to it, whatever the modes.
PROTECTED_HOMES = (Path("/root"), Path("/home"), Path("/run/user"))


def hidden_from_service(command: str) -> list[Path]:
    """The files `command` needs to start that lie where ProtectHome=yes hides them: the program
    and its `#!` interpreter, each also through its links (a venv's python links to the one it was
    made from, often a pyenv in a home directory), and for this smsgw its own package too.

    smsgw installed in a home directory (pip --user, pyenv, a venv there) wrote an ExecStart the
    service could not run: the start failed with 203/EXEC and nothing had said why."""
    try:
        program = shlex.split(command)[0]
    except (ValueError, IndexError):
        return []
    needed = [Path(program)]
    try:
        with open(program, "rb") as f:
            first = f.readline(256)
        if first.startswith(b"#!") and (words := first[2:].decode(errors="replace").split()):
            needed.append(Path(words[0]))
    except OSError:
        pass  # not readable here: judged by its path alone
    if command == own_command():
        needed.append(Path(__file__).parent)  # gateway/cli, wherever it was installed (editable too)
    hidden: list[Path] = []
    for path in needed:
        for candidate in (path.absolute(), path.resolve()):
            if any(candidate.is_relative_to(home) for home in PROTECTED_HOMES) and candidate not in hidden:
                hidden.append(candidate)
                break
    return hidden


def refuse_unreachable(command: str, dry: bool) -> None:
    """Refuse a unit whose ExecStart the service cannot run (warn only with --root: packaging may
    put the files elsewhere)."""
    if hidden := hidden_from_service(command):
        why = _hidden_words(command, hidden)
    elif (why := _not_a_program(command)) is None:
        return
    if not dry:
        raise CliError(why, EXIT_USAGE)
    print(f"warning: {why}")


def _not_a_program(command: str) -> str | None:
    """Why `command`'s first word is no program here: `--exec "/srv/my venv/bin/smsgw"` (quoted for
    the shell once) was split at its blank, and the unit ran "/srv/my" (203/EXEC)."""
    try:
        program = shlex.split(command)[0]
    except (ValueError, IndexError):
        program = ""
    if program and os.path.isfile(program) and os.access(program, os.X_OK):
        return None
    return (
        f"--exec {command!r}: {program or 'nothing'} is no program this machine can run. --exec is a command"
        " line (shell words): quote a path with a blank in it, e.g. --exec \"'/srv/my venv/bin/smsgw'\""
    )


def _hidden_words(command: str, hidden: list[Path]) -> str:
    return (
        f"the service cannot run {command}: {', '.join(map(str, hidden))}"
        f" {'lies' if len(hidden) == 1 else 'lie'} in a home directory"
        f" ({', '.join(map(str, PROTECTED_HOMES))}), which the unit's ProtectHome=yes hides from it (the"
        " start would fail with 203/EXEC). Install smsgw where the service can read it, with a python outside"
        " the home directories (e.g. /usr/bin/python3 -m venv /opt/smsgw/venv &&"
        f" /opt/smsgw/venv/bin/pip install {installed_from()}), and run install-service again with"
        " --exec /opt/smsgw/venv/bin/smsgw"
    )


UNKNOWN_SOURCE = "/path/to/smsgw"


def installed_from() -> str:
    """The source directory this smsgw runs from or was installed from, as one shell word, for
    `pip install` to install it again elsewhere: smsgw is on no package index, and the hint's
    `pip install smsgw` failed as pasted. UNKNOWN_SOURCE where neither is known (a wheel)."""
    here = Path(__file__).resolve().parents[2]  # the directory holding the gateway package
    if _smsgw_source(here):  # run from the source tree, or installed editable from it
        return shlex.quote(str(here))
    try:
        found = recorded_source(metadata.distribution("smsgw"))
    except metadata.PackageNotFoundError:
        found = None
    return shlex.quote(found) if found is not None else UNKNOWN_SOURCE


def recorded_source(dist: metadata.Distribution) -> str | None:
    """The local directory (or archive) pip installed `dist` from, as PEP 610's direct_url.json
    records it; None for one from an index or a remote URL."""
    try:
        recorded = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        return None
    parsed = urlparse(recorded.get("url", "") if isinstance(recorded, dict) else "")
    return unquote(parsed.path) if parsed.scheme == "file" and parsed.path else None


def _smsgw_source(directory: Path) -> bool:
    try:
        return 'name = "smsgw"' in (directory / "pyproject.toml").read_text()
    except OSError:
        return False
