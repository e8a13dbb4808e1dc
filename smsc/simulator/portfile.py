"""Where a simulator with `control_port = 0` says the port the OS gave it: a file beside its log
(`var/simulator.control-port` beside `var/simulator.jsonl`), read by `smsgw simulator send-mo` and
`send-report`, which otherwise tried port 0 and could never reach it.

Written by the simulator itself at its start, so that the one `smsgw run` starts says its port as
`smsgw simulator run`'s does, and removed at its stop if it is still this process's (another
simulator may have started on that log since).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SUFFIX = ".control-port"


def port_file(log_path: Path) -> Path:
    return log_path.with_name(log_path.stem + SUFFIX)


def write_port(path: Path, port: int) -> None:
    """The port and who listens on it, written whole (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"control_port": port, "pid": os.getpid()}) + "\n")
    tmp.replace(path)


def remove_port(path: Path) -> None:
    if read_port(path).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def read_port(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
