"""`billing_dir = "/proc/billing"` passed check-config as root: access(2) lets root "write" in /proc, and
every billing run then failed (no directory can be made there). Refused now, naming the filesystem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import config_text
from tests.test_config_hosts import check_config


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="no /proc here")
@pytest.mark.parametrize("where", ["/proc/billing", "/proc/smsgw/billing", "/sys/billing"])
def test_a_billing_dir_on_the_kernels_filesystem_is_refused(tmp_path: Path, where: str) -> None:
    if where.startswith("/sys") and not os.path.ismount("/sys"):
        pytest.skip("no /sys mounted here")
    res = check_config(tmp_path, config_text(tmp_path, smsc_port=2775, billing_dir=where))
    assert res.returncode != 0, (res.stdout, res.stderr)
    assert f"[gateway] billing_dir: {where} is on /" in res.stderr, res.stderr
    assert "filesystem, where no files can be made: name a directory on a disk" in res.stderr


def test_a_billing_dir_on_a_disk_is_taken(tmp_path: Path) -> None:
    res = check_config(tmp_path, config_text(tmp_path, smsc_port=2775, billing_dir=str(tmp_path / "bills")))
    assert res.returncode == 0, res.stderr
    assert "billing_dir" not in res.stderr, res.stderr
