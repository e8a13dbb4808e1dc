"""How to stop or restart the running daemon, in the words that fit this machine: `systemctl` where an
smsgw unit is installed, else the daemon was started by hand and `kill PID` (with where the pid is).

Told to run `systemctl restart smsgw` on a machine with no unit, the admin got only "Unit
smsgw.service not found", and the old daemon ran on. Shared by `restore` (stop it first), the
refusal of a newer command to upgrade a database under an older daemon, and `status` (the daemon
runs another version than the one installed)."""

from __future__ import annotations

from pathlib import Path

from gateway import statelock


def unit_installed() -> bool:
    """Whether systemd has an smsgw unit here (`gateway.sudoline.UNITS`): else the daemon was
    started by hand, and `systemctl stop smsgw` only answers "Unit smsgw.service not loaded"."""
    from gateway.sudoline import UNITS

    return any(unit.exists() for unit in UNITS)


def _kill(state_dir: Path, pid: int | None) -> str:
    lock = state_dir / statelock.LOCK_FILE
    return f"`kill {pid}`, the pid in {lock}" if pid else f"`kill` the pid in {lock}"


def how_to_stop(state_dir: Path, pid: int | None) -> str:
    if unit_installed():
        return "`systemctl stop smsgw`"
    return (
        f"no systemd unit is installed, so it was started by hand: stop it there, or {_kill(state_dir, pid)}"
    )


def how_to_restart(state_dir: Path, pid: int | None) -> str:
    if unit_installed():
        return "`systemctl restart smsgw`"
    return (
        f"no systemd unit is installed, so it was started by hand: stop it there, or"
        f" {_kill(state_dir, pid)}, and start it again as it was started"
    )
