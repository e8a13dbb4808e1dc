"""The check that a billing file was written to its end is one function (`mailed.whole_sha`), for the
billing run and restore (a lost mailed mark read from the file on disk) and the panel's billing page.

It was written twice: the panel's opened only a regular file, the billing side read any path whole, so
a FIFO standing where a month's file or summary goes held the reader (the run, a restore) forever.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from billing_reports.mailed import whole_sha
from gateway.web.billingfiles import written_whole
from tests.test_process import ROOT

PROBE = """
import sys
from pathlib import Path
from billing_reports.mailed import disk_mark, whole_sha
for name in sys.argv[1:]:
    print(name, whole_sha(Path(name)), disk_mark(Path(name)), disk_mark(Path(name), summary=True))
"""


def _file(path: Path, body: bytes) -> str:
    sha = hashlib.sha256(body).hexdigest()
    path.write_bytes(body + f"end\t2\tsha256:{sha}\n".encode())
    return sha


def test_a_fifo_where_a_billing_file_goes_is_not_whole_and_holds_no_reader(tmp_path: Path) -> None:
    whole, cut, fifo = tmp_path / "acme.txt", tmp_path / "rival.txt", tmp_path / "summary.txt"
    sha = _file(whole, b"2026-02\tacme\n+48500100200\t1\n")
    cut.write_bytes(whole.read_bytes()[:-5])
    os.mkfifo(fifo)
    # In a process of its own: a reader held by the FIFO would hold the test too (no writer comes).
    res = subprocess.run(
        [sys.executable, "-c", PROBE, str(whole), str(cut), str(fifo)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"{whole} {sha} {sha} "), lines
    assert lines[1] == f"{cut} None None None", lines
    assert lines[2] == f"{fifo} None None None", lines
    # The panel's check is the same one.
    assert whole_sha(whole) == sha
    assert [written_whole(tmp_path, p.name) for p in (whole, cut, fifo)] == [True, False, False]
