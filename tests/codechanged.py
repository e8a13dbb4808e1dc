"""A test's daemon stopped by its own intake worker because the checkout's source files changed.

An intake worker started on code other than its daemon's exits CODE_CHANGED, and the daemon stops
with status 1 for systemd to start it again on the new code (`gateway.codestamp`): right after an
upgrade, and in a test whose checkout has a file edited (or written back) while its daemon runs, the
worker's start coming after the edit (slow under load, that start leaves seconds for one). The test
then saw its mail refused and the daemon's exit 1 at its SIGTERM: a stop that looked broken. Only
with such a file found is that the reason given; a worker saying so with every file as it was stays
a failure of the test.
"""

from __future__ import annotations

import json
import subprocess
from contextlib import suppress
from pathlib import Path

from gateway.codestamp import _PACKAGES as CODE_PACKAGES

ROOT = Path(__file__).resolve().parents[1]


def started_with(proc: subprocess.Popen[bytes]) -> Path:
    """The config file `tests.test_process.start_daemon` ran the daemon with; its log is beside it."""
    args = [str(arg) for arg in proc.args]  # type: ignore[union-attr]
    return Path(args[args.index("--config") + 1])


def _records(log: Path) -> list[dict[str, object]]:
    found = []
    for line in log.read_text().splitlines() if log.exists() else []:
        with suppress(ValueError):
            if isinstance(record := json.loads(line), dict):
                found.append(record)
    return found


def logged_errors(tmp_path: Path) -> list[dict[str, object]]:
    """The daemon's (and its workers') error lines, for a failure's message."""
    return [r for r in _records(tmp_path / "daemon.log") if r.get("level") in ("error", "critical")]


def code_changed_under(proc: subprocess.Popen[bytes]) -> list[str]:
    """The source files written after the daemon's start, if a worker of it found the code changed."""
    config = started_with(proc)
    if not any(r.get("event") == "intake.code_changed" for r in _records(config.parent / "daemon.log")):
        return []
    started = config.stat().st_mtime_ns  # written just before the daemon's start
    changed = []
    for package in CODE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            with suppress(OSError):  # removed meanwhile: the stamp skips it too
                if path.stat().st_mtime_ns > started:
                    changed.append(str(path.relative_to(ROOT)))
    return changed
