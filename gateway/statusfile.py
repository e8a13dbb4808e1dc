"""The daemon's status file (`status.json` in the state directory), read.

Apart from `gateway.housekeeping`, which writes it, because `smsgw status` reads it every minute
under monitoring: the housekeeping module imports most of the daemon.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
