"""`state_dir = "/proc/smsgw"` passed check-config as root (access(2) lets root "write" in /proc), and
`run` then stopped on a bare "[Errno 2] No such file or directory" with exit 1, which the unit restarts
forever. Refused by both now as billing_dir on /proc is, naming the key the admin wrote, exit 3."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import config_text
from tests.test_first_day_cli import run

EXIT_CONFIG = 3
MADE = "filesystem, where no files can be made: name a directory on a disk"

pytestmark = pytest.mark.skipif(not Path("/proc/self").exists(), reason="no /proc here")


def config(tmp_path: Path, where: str, **gateway: str) -> Path:
    text = config_text(tmp_path, smsc_port=2775, **gateway)
    text = text.replace(f'state_dir = "{tmp_path / "state"}"', f'state_dir = "{where}"', 1)
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("where", ["/proc/smsgw", "/proc/smsgw/state", "/proc/sys", "/sys/smsgw"])
def test_check_config_and_run_refuse_a_state_dir_on_a_kernel_filesystem(tmp_path: Path, where: str) -> None:
    if where.startswith("/sys") and not os.path.ismount("/sys"):
        pytest.skip("no /sys mounted here")
    path = config(tmp_path, where, billing_dir=str(tmp_path / "bills"))
    for command in ("check-config", "run"):
        res = run("--config", str(path), command)
        assert res.returncode == EXIT_CONFIG, (command, res.stdout, res.stderr)
        assert f"[gateway] state_dir: {where} is on /" in res.stderr, (command, res.stderr)
        assert MADE in res.stderr and 'state_dir = "/var/lib/smsgw"' in res.stderr, res.stderr
        assert "Errno" not in res.stderr, res.stderr


def test_without_billing_dir_the_refusal_names_state_dir(tmp_path: Path) -> None:
    # The billing files default to state_dir/billing: the key the admin wrote is state_dir.
    res = run("--config", str(config(tmp_path, "/proc/smsgw")), "check-config")
    assert res.returncode == EXIT_CONFIG, res.stderr
    assert "[gateway] state_dir: /proc/smsgw is on /proc, the kernel's proc " + MADE in res.stderr
    assert "billing_dir" not in res.stderr, res.stderr


def test_a_state_dir_on_a_disk_is_taken(tmp_path: Path) -> None:
    res = run("--config", str(config(tmp_path, str(tmp_path / "state"))), "check-config")
    assert res.returncode == 0, res.stderr
    assert "state_dir" not in res.stderr, res.stderr
