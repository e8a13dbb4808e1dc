"""How to stop or restart the running daemon, in the words that fit it: `systemctl` where it runs as a
systemd service (the unit its cgroup names), else it was started by hand and `kill PID` (with where the
pid is).

Told to run `systemctl restart smsgw` on a machine with no unit, the admin got only "Unit
smsgw.service not found", and the old daemon ran on. Told so wherever an smsgw unit was installed, a
daemon started by hand beside it (a staging one on its own state directory) had the admin restart the
unit's, the other daemon. Shared by `restore` (stop it first, start it after), the refusal of a newer
command to upgrade a database under an older daemon, and `status` (the daemon runs another version
than the one installed)."""

from __future__ import annotations

import shlex
from pathlib import Path

from gateway import statelock

PROC = Path("/proc")  # where each process's cgroup is read


def unit_installed() -> bool:
    """Whether systemd has an smsgw unit here (`gateway.sudoline.UNITS`): else the daemon was
    started by hand, and `systemctl stop smsgw` only answers "Unit smsgw.service not loaded"."""
    from gateway.sudoline import UNITS

    return any(unit.exists() for unit in UNITS)


def service_of(pid: int) -> str | None:
    """The smsgw service `pid` runs in, as its cgroup names it (`smsgw`, for
    `0::/system.slice/smsgw.service`) and a unit installed for smsgw is called (`_smsgw_unit`); None
    for one started by hand: in a login's session scope, a container's root, a user's own service
    (under `user@UID.service`, which `systemctl` without `--user` does not know), or a service not
    smsgw's (a shell that cron or a CI runner started: `systemctl restart cron` restarts no smsgw);
    or a cgroup that cannot be read (the process gone)."""
    try:
        lines = (PROC / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    # The unified hierarchy's line (`0::/...`), else the systemd one of a v1 host (`1:name=systemd:/...`).
    fields = [line.split(":", 2) for line in lines if line.count(":") >= 2]
    paths = [path for num, ctl, path in fields if num == "0" and not ctl and path != "/"]
    paths += [path for _, ctl, path in fields if ctl == "name=systemd"]
    for path in paths:
        parts = path.strip("/").split("/")
        if any(part.startswith("user@") for part in parts):
            return None
        services = [part for part in parts if part.endswith(".service")]
        if services:
            name = services[-1].removesuffix(".service")
            return name if _smsgw_unit(name) else None
    return None


def _smsgw_unit(name: str) -> bool:
    """Whether the unit `name` is smsgw's: installed where `gateway.sudoline.UNITS` are, under their
    name or another that runs smsgw (`smsgw-staging.service`)."""
    from gateway.sudoline import UNITS

    for unit in (Path(units.parent, f"{name}.service") for units in UNITS):
        if unit in UNITS and unit.exists():
            return True
        try:
            if "smsgw" in unit.read_text():
                return True
        except (OSError, UnicodeDecodeError):
            continue
    return False


def unit_for(config: Path) -> str | None:
    """The installed smsgw unit whose `ExecStart` runs on `config` (`install-service` writes
    `--config PATH`), as `systemctl` names it; None where none does: a daemon started by hand on its
    own config, beside a unit installed for another."""
    from gateway.sudoline import UNITS

    want = config.resolve()
    for unit in UNITS:
        try:
            text = unit.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        for line in text.splitlines():
            if line.strip().startswith("ExecStart=") and _config_of(line.split("=", 1)[1]) == want:
                return unit.stem
    return None


def _config_of(command: str) -> Path | None:
    try:
        words = shlex.split(command.lstrip("-@:+!"))
    except ValueError:
        return None
    for i, word in enumerate(words):
        if word in ("--config", "-c") and i + 1 < len(words):
            return Path(words[i + 1]).resolve()
        if word.startswith("--config="):
            return Path(word.split("=", 1)[1]).resolve()
    return None


def _kill(state_dir: Path, pid: int | None) -> str:
    lock = state_dir / statelock.LOCK_FILE
    return f"`kill {pid}`, the pid in {lock}" if pid else f"`kill` the pid in {lock}"


def _by_hand(pid: int | None) -> str:
    if not unit_installed():
        return "no systemd unit is installed, so it was started by hand"
    return f"pid {pid} runs in no systemd service, so it was started by hand"


def _service(pid: int | None) -> str | None:
    """The service to name: the one the daemon's cgroup names; with no pid to read, the unit
    installed, as before (`smsgw`)."""
    if pid:
        return service_of(pid)
    return "smsgw" if unit_installed() else None


def how_to_stop(state_dir: Path, pid: int | None) -> str:
    if (service := _service(pid)) is not None:
        return f"`systemctl stop {service}`"
    return f"{_by_hand(pid)}: stop it there, or {_kill(state_dir, pid)}"


def how_to_restart(state_dir: Path, pid: int | None) -> str:
    if (service := _service(pid)) is not None:
        return f"`systemctl restart {service}`"
    return f"{_by_hand(pid)}: stop it there, or {_kill(state_dir, pid)}, and start it again as it was started"
