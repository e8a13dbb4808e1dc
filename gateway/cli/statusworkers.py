"""`smsgw status`'s words on the supervised workers, and which of their states make it exit 1.

An intake process restarting, or started and not serving the relay port yet (some 5 s, 7.7 s under
load), took no mail: /healthz answered 503 "no intake process takes mail" while status said the
worker was "running" and exited 0, the two checks a monitor reads disagreeing. The status file says
whether each relay port's process serves it (`Worker.snapshot`'s `serving`), and status judges it as
/healthz does (`gateway.web.healthworkers.takes_mail`).
"""

from __future__ import annotations

from typing import Any

from gateway.cli.statusdaemon import when
from gateway.web.healthworkers import INTAKE_PREFIX, intake_silent


def silent_workers(status: dict[str, Any], now: float) -> dict[str, float]:
    """The intake processes silent past `INTAKE_SILENT_SECONDS` at `now`, with their seconds of silence
    (the status file's `last_beat_ago` was at its `updated_at`)."""
    since, workers = max(0.0, now - float(status.get("updated_at", now))), status.get("workers", {})
    ago = {name: float(w.get("last_beat_ago") or 0.0) + since for name, w in workers.items()}
    return {name: ago[name] for name, w in workers.items() if intake_silent(name, str(w["state"]), ago[name])}


def none_serving(status: dict[str, Any], now: float) -> bool:
    """Whether the relay port has intake processes and none of them takes mail: none serving it, or
    each serving one stalled or silent. A status file without `serving` (an earlier release's daemon,
    or no intake processes) says nothing of it."""
    workers = status.get("workers", {})
    intake = {name: w for name, w in workers.items() if name.startswith(INTAKE_PREFIX) and "serving" in w}
    silent = silent_workers(status, now)
    return bool(intake) and not any(
        w["serving"] and w.get("state") != "stalled" and name not in silent for name, w in intake.items()
    )


def worker_lines(status: dict[str, Any], now: float) -> list[str]:
    silent = silent_workers(status, now)
    lines = []
    for name, worker in status.get("workers", {}).items():
        line = f"worker {name}: {worker['state']}, restarts {worker['restarts']}"
        if worker.get("serving") is False:
            line += ", not serving the relay port (yet): it takes no mail"
        if name in silent:
            line += f", silent for {silent[name]:.0f} s: no heartbeat, its share of the port takes no mail"
        if pid := status.get("intake_pids", {}).get(name):
            line += f", pid {pid} (relay port)"
        if worker.get("last_error"):
            line += f", last error {when(worker['last_error_at'])}: {worker['last_error']}"
        lines.append(line)
    return lines
