"""The low-port drop-in `smsgw install-service` manages: `smsgw.service.d/low-port.conf`.

It follows the config the service runs with, the one on disk: a re-run without `--force` keeps
that config, and deciding by the re-run's `--listen`/`--submission` (their defaults, or ports above
1024 given for the new config that was never written) removed the drop-in under a kept config on
port 25, so the next restart could not bind it. A file that differs from the one install-service
writes (and `systemd/smsgw-low-port.conf` ships) was changed by the admin: it is neither replaced
nor removed, as `--force` replaces only the config.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.servicefiles import LOW_PORT_DROPIN

if TYPE_CHECKING:
    from gateway.config import Config

DROPIN = Path("smsgw.service.d/low-port.conf")


def below_1024(cfg: Config) -> list[str]:
    """The config's listeners that need CAP_NET_BIND_SERVICE, as messages name them (port 0 is one
    the system picks above 1023)."""
    return [f"{key} port {port}" for key, _host, port in cfg.listeners() if 0 < port < 1024]


def place_low_port_dropin(units: Path, cfg: Config | None) -> None:
    """Write, keep or remove the drop-in for `cfg`; with no config that could be read (`None`),
    whatever is there stays: the service cannot start until the config is fixed, and then it may
    need the drop-in again."""
    path = units / DROPIN
    try:
        current: str | None = path.read_text()
    except FileNotFoundError:
        current = None
    if cfg is None:
        if current is not None:
            print(f"left {path} as it is (the config could not be read to see which ports it listens on)")
        return
    low = below_1024(cfg)
    if current is not None and current != LOW_PORT_DROPIN:
        why = "needed by " + ", ".join(low) if low else "though no listener of the config is below 1024"
        print(f"kept {path} (changed by hand; {why})")
        return
    if low and current == LOW_PORT_DROPIN:
        path.chmod(0o644)  # its mode mended as the unit's is, without a word
        return  # as it should be: a re-run that changes nothing says nothing about it
    if low:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(LOW_PORT_DROPIN)
        path.chmod(0o644)
        print(f"wrote {path} (for {', '.join(low)})")
    elif current is not None:
        path.unlink()
        print(f"removed {path} (no listener of the config is below 1024)")
