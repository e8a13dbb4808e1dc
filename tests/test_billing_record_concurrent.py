"""Two runs writing a month's record of its billing mails (`<month>/_mailed`) at once: each read the
marks and then wrote the record, so the slower one wrote its older view over the newer one, and the
record lacked a mail the other had queued (restored over a lost database, the month was then "not
all mailed" and mailed again). Two real `smsgw billing run --send` processes on real files: the
first held between its read of the marks and its write, the second let run meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from billing_reports.mailedrecord import RECORD
from tests.billing_world import ROOT, at, prepare
from tests.conftest import free_port

# `smsgw billing run` held once it has read the month's marks, until the test lets it go on.
HELD_AFTER_READ = """
import os, sys, time
from pathlib import Path
from billing_reports import mailedrecord

reached, go = Path(os.environ["HELD_REACHED"]), Path(os.environ["HELD_GO"])
read = mailedrecord.marks

def held(*args, **kwargs):
    found = read(*args, **kwargs)
    reached.touch()
    while not go.exists():
        time.sleep(0.01)
    return found

mailedrecord.marks = held
from gateway.cli.main import main
raise SystemExit(main())
"""


def waiting_on_a_lock(pid: int) -> bool:
    """The process waits for a file lock another holds (the kernel's list of locks says so)."""
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if "->" in parts and str(pid) in parts:
            return True
    return False


def until(predicate: object, what: str, timeout: float = 60) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def spawn(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


async def test_two_runs_writing_the_record_at_once_keep_both_runs_marks(tmp_path: Path) -> None:
    path, cfg = prepare(tmp_path, free_port(), last_billed="2026-02", traffic={"acme": [at(2026, 3, 2, 8)]})
    reached, go = tmp_path / "reached", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HELD_REACHED": str(reached), "HELD_GO": str(go)}
    argv = ["-c", str(path), "billing", "run", "--month", "2026-03", "--send"]
    # The first mails acme's file alone, and is held once it has read the marks (acme's).
    first = spawn("-c", HELD_AFTER_READ, *argv, "--account", "acme", env=env)
    try:
        await asyncio.to_thread(until, lambda: reached.exists() or first.poll() is not None, "first held")
        assert first.poll() is None, first.communicate()
        # The second mails the summary (acme's held: mailed by the first) and records both.
        second = spawn("-m", "gateway.cli", *argv, env=env)
        try:
            await asyncio.to_thread(
                until,
                lambda: second.poll() is not None or waiting_on_a_lock(second.pid),
                "second ended or waits for the record's lock",
            )
        finally:
            go.touch()
            out2, err2 = second.communicate(timeout=120)
    finally:
        go.touch()
        out1, err1 = first.communicate(timeout=120)
    assert first.returncode == 0 and "2 mail(s) queued" in out1, out1 + err1  # acme and the operator
    assert "1 mail(s) queued" in out2, out2 + err2  # the summary; acme's file held, as mailed
    record = (cfg.billing_dir / "2026-03" / RECORD).read_text()
    assert sorted(line.split("\t")[0] for line in record.splitlines()[1:]) == ["1", "summary"], record
