"""The test harness's reading of a daemon stopped by its worker for changed code (`tests.codechanged`).

Such a test is void, not failed, only when a source file was in fact written while its daemon ran:
a worker reporting other code with every file as it was is a fault the test must still show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.codechanged import code_changed_under, logged_errors

SAID = {"worker": "intake-1", "daemon": "aaaa", "worker_code": "bbbb", "event": "intake.code_changed"}


def ended_daemon(tmp_path: Path, *lines: dict[str, str]) -> subprocess.Popen[bytes]:
    """A process run as `start_daemon` runs one (`--config` its config), its log beside it, ended."""
    config = tmp_path / "config.toml"
    config.write_text("")
    (tmp_path / "daemon.log").write_text(
        "not json\n" + "".join(json.dumps({**r, "level": "error"}) + "\n" for r in lines)
    )
    proc = subprocess.Popen([sys.executable, "-c", "pass", "--config", str(config), "run"])
    proc.wait()
    return proc


def test_a_worker_saying_the_code_changed_with_no_file_written_since_is_no_excuse(
    tmp_path: Path,
) -> None:
    proc = ended_daemon(tmp_path, SAID)
    later = time.time_ns() + 3600 * 10**9  # the daemon "started" after every source file was written
    os.utime(tmp_path / "config.toml", ns=(later, later))
    assert code_changed_under(proc) == []  # the test then fails, its worker's word notwithstanding


def test_files_written_after_the_daemons_start_are_named(tmp_path: Path) -> None:
    proc = ended_daemon(tmp_path, SAID)
    os.utime(tmp_path / "config.toml", ns=(0, 0))  # the daemon "started" before every source file
    changed = code_changed_under(proc)
    assert "gateway/codestamp.py" in changed and all(name.endswith(".py") for name in changed)


def test_without_the_workers_word_no_file_is_looked_at(tmp_path: Path) -> None:
    proc = ended_daemon(tmp_path, {"event": "daemon.task_lost"})
    os.utime(tmp_path / "config.toml", ns=(0, 0))
    assert code_changed_under(proc) == []
    assert [r["event"] for r in logged_errors(tmp_path)] == ["daemon.task_lost"]
