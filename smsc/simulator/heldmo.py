"""The phones' SMS the simulator holds for a client not bound, kept in a small file beside its log.

An MO injected while no client of its protocol is bound waits for the next bind (`SimulatorCore`),
as a real SMSC's store-and-forward keeps it. In memory only, a restart of the daemon (which runs the
simulator in its process) lost it after `smsgw simulator send-mo` had answered ok: a premium vote
paid by the phone was never seen. Held MOs are rare (only while nothing is bound), so the whole list
is written again whenever it changes, atomically, and read back by the next start (`resume`).

A part a session ended before its client acknowledged (`SimulatorCore.hold_part`) is kept the same
way, as its fields: SMPP's deliver_sm (its short_message bytes as hex) or CIMD2's parameters.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

MODE = 0o600  # the phone's number and text: its owner's only, as the simulator's log


def held_path(log_path: Path) -> Path:
    return log_path.with_name(log_path.name + ".held-mo")


def _bytes_as_hex(value: object) -> dict[str, str]:
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    raise TypeError(f"{type(value).__name__} in a held MO part")


def _field(value: Any) -> Any:
    return bytes.fromhex(value["hex"]) if isinstance(value, dict) else value


def save(path: Path, held: list[list[Any]]) -> None:
    """Write the held MOs (each [protocol, source, destination, text, parts, shuffle], or a part as
    [protocol, "part", its fields]); none: no file."""
    try:
        if not held:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(held, out, ensure_ascii=False, default=_bytes_as_hex)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except (OSError, TypeError) as exc:  # the simulator goes on; only a restart would lose them, as before
        log.warning("sim.held_mo_not_kept", path=str(path), error=str(exc))


def load(path: Path) -> list[tuple[str | None, tuple[Any, ...]]]:
    """The MOs an earlier run held, as `save` wrote them, each as (protocol, what `Held` holds: ("mo",
    source, destination, text, parts, shuffle) or ("part", fields)); a file not read holds none."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("sim.held_mo_unreadable", path=str(path), error=str(exc))
        return []
    held: list[tuple[str | None, tuple[Any, ...]]] = []
    for h in found if isinstance(found, list) else []:
        if isinstance(h, list) and len(h) == 6:
            held.append((h[0], ("mo", *h[1:])))
            log.debug("sim.mo_held_resumed", source=h[1], destination=h[2])
        elif isinstance(h, list) and len(h) == 3 and h[1] == "part" and isinstance(h[2], list):
            held.append((h[0], ("part", tuple((key, _field(value)) for key, value in h[2]))))
            log.debug("sim.mo_part_held_resumed", protocol=h[0])
    return held
