"""`smsgw simulator send-mo --reply-to-last` and `send-report --last` after a restart of the simulator
(a restart of the daemon that runs it): both said "no SMS received yet" although its log file held the
SMS the admin had just sent. The answer now goes to the last SMS in the log; a report, which needs
what the earlier run kept in memory, is refused naming when this run started and the SMS before it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from gateway.config import SimulatorSection
from smsc.simulator.control import execute
from smsc.simulator.core import SimulatorCore

PHONE = "+48601123456"


def earlier_run(log: Path, *records: dict[str, object]) -> None:
    lines = [json.dumps({"ts": "2026-12-02T14:00:00+00:00", "protocol": "smpp", **r}) for r in records]
    log.write_text("\n".join(lines) + '\n{"ts": "2026-12-02T14:0')  # the last line torn by a kill


def restarted(tmp_path: Path) -> SimulatorCore:
    started = datetime(2026, 12, 2, 15, 0, 0, tzinfo=UTC)
    return SimulatorCore(SimulatorSection(), tmp_path / "sim.jsonl", now=lambda: started)


async def test_reply_to_last_answers_the_last_sms_of_the_log_after_a_restart(tmp_path: Path) -> None:
    earlier_run(
        tmp_path / "sim.jsonl",
        {"message_id": "7", "source": "48100200300", "destination": PHONE, "verdict": "delivered"},
        {"message_id": "", "source": "48100200300", "destination": "+48601110000", "verdict": "rejected"},
    )
    core = restarted(tmp_path)
    answer = await execute(core, {"op": "mo", "reply_to_last": True, "text": "Yes"})
    # No gateway logged in to this simulator: the MO is held for the next login, as any other.
    assert answer == {"ok": True, "sessions": 0, "source": PHONE, "destination": "+48100200300"}


async def test_report_on_last_says_the_sms_came_before_the_simulator_started(tmp_path: Path) -> None:
    earlier_run(
        tmp_path / "sim.jsonl",
        {"message_id": "7", "source": "48100200300", "destination": PHONE, "verdict": "delivered"},
    )
    answer = await execute(restarted(tmp_path), {"op": "report", "last": True, "status": "delivered"})
    assert answer["ok"] is False
    error = answer["error"]
    assert error.startswith("no SMS received since the simulator started at 2026-12-02 15:00:00 UTC"), error
    assert "(message_id 7, 2026-12-02T14:00:00+00:00) came before" in error


async def test_with_no_log_there_is_nothing_yet(tmp_path: Path) -> None:
    core = restarted(tmp_path)
    mo = await execute(core, {"op": "mo", "reply_to_last": True, "text": "Yes"})
    report = await execute(core, {"op": "report", "last": True, "status": "delivered"})
    assert mo == {"ok": False, "error": "no SMS received yet: nothing to reply to"}
    assert report == {"ok": False, "error": "no SMS received yet: nothing to report on"}
