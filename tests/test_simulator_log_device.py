"""The simulator's log, or the state directory, named as a device (`log = "/dev/null"`, as
bench/e2e.py runs it) never has its mode changed.

The part log narrowed a log readable by every user to its owner's at its first write; run as root
with `log = "/dev/null"`, that made the machine's /dev/null 0660, and every other user's write to
it failed (apt's signature check, run as _apt, among them). A device node of the test's own, with
/dev/null's numbers, stands in for it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway.filemodes import private_dir
from smsc.simulator.partlog import PartLog

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")


def null_device(tmp_path: Path) -> Path:
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    node.chmod(0o666)  # whatever the umask
    return node


@needs_root
def test_a_simulator_log_that_is_a_device_keeps_its_mode(tmp_path: Path) -> None:
    node = null_device(tmp_path)
    PartLog(node).append({"message_id": "1", "text": "x"})
    assert stat.S_IMODE(node.stat().st_mode) == 0o666


@needs_root
def test_a_private_directory_named_as_a_device_keeps_the_devices_mode(tmp_path: Path) -> None:
    node = null_device(tmp_path)
    private_dir(node)
    assert stat.S_IMODE(node.stat().st_mode) == 0o666
