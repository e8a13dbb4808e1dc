"""The start's whole-file check says which way the version changed since the last clean stop.

An older smsgw started on the file a newer one stopped logged "why": "an upgrade: the last stop was
of smsgw 0.2.30, this is 0.2.29". The daemon runs here as a real process; between its runs the
record of its clean stop is written as another version's would be.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from gateway import __version__
from tests.conftest import free_port
from tests.test_process import write_config
from tests.test_start_check import logged, run_and_stop, stop_record


def shifted(version: str, by: int) -> str:
    """The version with its last number moved by `by` (0.2.30 → 0.2.31 or 0.2.29)."""
    *head, last = version.split(".")
    return ".".join([*head, str(int(last) + by)])


@pytest.mark.parametrize(
    ("last", "way"),
    [
        (shifted(__version__, 1), "a downgrade"),
        (shifted(__version__, -1), "an upgrade"),
        ("dev-build", "another version"),
    ],
)
async def test_the_start_says_an_upgrade_a_downgrade_or_another_version(
    tmp_path: Path, last: str, way: str
) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    db = tmp_path / "state" / "smsgw.db"
    await run_and_stop(config, smtp_port, None, signal.SIGTERM)
    record = stop_record(db)
    text = record.read_text()
    assert f"version = {__version__}\n" in text, text
    record.write_text(text.replace(f"version = {__version__}\n", f"version = {last}\n"))
    await run_and_stop(config, smtp_port, None, signal.SIGTERM)
    (checked,) = logged(config, "store.checked")
    assert checked["why"] == f"{way}: the last stop was of smsgw {last}, this is {__version__}", checked
