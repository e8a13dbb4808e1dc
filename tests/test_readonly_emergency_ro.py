"""An ext4 with errors=remount-ro that errors made read-only, as current kernels show it: `emergency_ro`
among its superblock's options in /proc/self/mountinfo (`rw,errors=remount-ro,emergency_ro`), not `ro`,
while statvfs and access() call it writable and every write fails with EROFS.

Taken for writable, a maildir relay on it was told to add ReadWritePaths= (exit 3, which the unit never
restarts), and `run` stopped with a bare "[Errno 30] Read-only file system: .../smsgw.pid". Making
such a filesystem needs root and a disk that fails; the kernel's mountinfo text is fed instead (no
peer can exist for it), the state directory a real one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway import readonlyfs
from gateway.config import parse_config
from gateway.configcheck import state_dir_problem
from gateway.readonlyfs import READ_ONLY_FS, filesystem_read_only, refusal_exit
from gateway.sudoline import read_only
from tests.conftest import config_text
from tests.test_account_show import CLI

EMERGENCY = "rw,errors=remount-ro,emergency_ro"


def mountinfo(tmp_path: Path, of: Path, superblock: str) -> Path:
    """The kernel's mountinfo with the filesystem holding `of` under `superblock`'s options."""
    st = os.stat(of)
    device = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    path = tmp_path / "mountinfo"
    path.write_text(
        "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
        f"36 1 {device} / / rw,relatime shared:1 - ext4 /dev/sda1 {superblock}\n"
    )
    return path


@pytest.mark.parametrize(
    ("superblock", "read_only_itself"),
    [(EMERGENCY, True), ("ro,errors=remount-ro", True), ("rw,errors=remount-ro", False), ("rw", False)],
)
def test_emergency_ro_counts_as_read_only(tmp_path: Path, superblock: str, read_only_itself: bool) -> None:
    assert filesystem_read_only(tmp_path, mountinfo(tmp_path, tmp_path, superblock)) is read_only_itself


def test_a_state_dir_made_read_only_by_errors_is_told_to_be_remounted_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "state").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775))
    cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
    monkeypatch.setattr(readonlyfs, "MOUNTINFO", mountinfo(tmp_path, tmp_path, EMERGENCY))
    problem = state_dir_problem(cfg)  # what `run` and check-config say before anything is written
    assert problem == f"[gateway] state_dir: {cfg.state_dir} is not writable: {READ_ONLY_FS}"
    assert refusal_exit(problem) == 1  # the unit starts it again once it is remounted
    # One still to be made there: its parent is told the same, not to be given to a user.
    assert read_only(tmp_path) == f"{tmp_path}: {READ_ONLY_FS}"
    cfg_text = path.read_text().replace(str(tmp_path / "state"), str(tmp_path / "new-state"))
    path.write_text(cfg_text)
    cfg = parse_config(cfg_text, source="test", base_dir=tmp_path)
    problem = state_dir_problem(cfg)
    assert problem is not None and problem.endswith(f"cannot be created: {tmp_path}: {READ_ONLY_FS}"), problem


def test_check_config_says_to_remount_a_state_dir_made_read_only_by_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    monkeypatch.setattr(readonlyfs, "MOUNTINFO", mountinfo(tmp_path, tmp_path, EMERGENCY))
    code, _, err = CLI(path, capsys)("check-config")
    assert code == 1 and "remount it read-write" in err and "ReadWritePaths" not in err, err
