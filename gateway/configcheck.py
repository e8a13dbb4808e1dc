"""Checks of a loaded config against the machine: files holding secrets that others can read,
a state directory the daemon could not use, relay networks. Said by `check-config` and at start.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import NamedTuple

from gateway.config import Config
from gateway.configbase import ConfigError
from gateway.filemodes import mode_text, readable_by_others


class Exposure(NamedTuple):
    """A file holding a password that every user of the machine may read."""

    file: str
    mode: str
    holds: str
    fix: str

    def line(self) -> str:
        readable = f"is readable by every user (mode {self.mode})"
        return f"{self.file} holds {self.holds} and {readable}; fix: {self.fix}"


def exposed_secrets(cfg: Config, config_path: Path) -> list[Exposure]:
    """The files holding a password that every user of the machine may read.

    Not refused (a test machine may not care), but said on every start and by `check-config`, which
    the systemd unit runs first: the SMSC password gives anyone who reads it the operator's account.
    """
    found: list[Exposure] = []
    inline = [f"[[smsc]] {s.name}" for s in cfg.smsc if s.password is not None]
    if cfg.mail.relay_password is not None:
        inline.append("[mail] relay_password")
    if inline and (mode := readable_by_others(config_path)) is not None:
        holds = f"the passwords of {', '.join(inline)}"
        found.append(Exposure(str(config_path), mode_text(mode), holds, f"chmod 640 {config_path}"))
    for s in cfg.smsc:
        path = s.password_path(cfg.base_dir)
        if path is not None and (mode := readable_by_others(path)) is not None:
            holds = f"the password_file of [[smsc]] {s.name}"
            found.append(Exposure(str(path), mode_text(mode), holds, f"chmod 600 {path}"))
    relay = cfg.mail.relay_password_path(cfg.base_dir)
    if relay is not None and (mode := readable_by_others(relay)) is not None:
        holds = "the [mail] relay_password_file"
        found.append(Exposure(str(relay), mode_text(mode), holds, f"chmod 600 {relay}"))
    return found


def network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise ConfigError(f"not a network: {cidr!r} (use CIDR such as 10.0.0.0/8)") from exc


def state_dir_problem(cfg: Config) -> str | None:
    """Why the daemon could not use `state_dir`, said before it tries (check-config and run)."""
    path = cfg.state_dir
    example = 'e.g. state_dir = "/var/lib/smsgw"'
    if path.exists():
        if not path.is_dir():
            return f"gateway.state_dir: {path} is a file, not a directory ({example})"
        if not os.access(path, os.W_OK | os.X_OK):
            return (
                f"gateway.state_dir: {path} is not writable by this user; run as the service's user"
                f" (sudo -u smsgw ...) or fix its owner"
            )
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"gateway.state_dir: {path} cannot be created: {parent} is a file ({example})"
    if not os.access(parent, os.W_OK | os.X_OK):
        return (
            f"gateway.state_dir: {path} does not exist and cannot be created by this user"
            f" ({parent} is not writable); create it: mkdir -p {path} && chown smsgw: {path}"
        )
    return None
