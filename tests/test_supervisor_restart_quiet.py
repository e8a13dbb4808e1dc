"""A worker tried again each second on a full disk logs its restarts at DEBUG: the minute's
`worker.disk_full` line (with how many it held back) says it, and `worker.restarted` at WARNING for
each try (64 in the first minute of a full disk, beside one `worker.disk_full`) gave the journal the
crash-loop look that line was made to end. A restart after a crash is still a warning."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.test_supervisor_disk_full import FullDisk


async def test_restarts_after_a_full_disk_are_debug_lines_beside_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with capture_logs() as logs:
        async with FullDisk(monkeypatch, tmp_path / "full.db", fails=8) as schedule:
            pass
    assert schedule.worker.restarts == 8
    restarted = [e for e in logs if e["event"] == "worker.restarted"]
    assert len(restarted) == 8
    assert {e["log_level"] for e in restarted} == {"debug"}, restarted
    warned = [e["event"] for e in logs if e["log_level"] in ("warning", "error")]
    assert warned == ["worker.disk_full"], warned
