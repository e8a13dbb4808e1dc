"""Whether a daemon runs on a state directory is told by its lock on `smsgw.pid`, not by the pid in
its status file.

During a slow first start after an upgrade (migrations on a large database) `smsgw status` said
"not running" and exited 3 while the daemon held the lock and migrated; and a status file naming a
live process that was no daemon there (a copied state directory, a pid reused after kill -9) made
`status` report it running and every command refuse "the daemon running on it is an older smsgw".
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.cli.common import running_pid
from gateway.config import load_config
from gateway.housekeeping import STATUS_FILE
from gateway.statelock import LOCK_FILE
from tests.conftest import config_text, free_port
from tests.test_process import smsgw

# Holds the lock as the daemon does (exclusive flock, its pid in the file), then waits for stdin to close.
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.pwrite(fd, f"{os.getpid()}\\n".encode(), 0)
print("held", flush=True)
sys.stdin.read()
"""


@contextmanager
def process(*args: str) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        try:
            yield proc
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(30)


def state(tmp_path: Path) -> Path:
    """A config whose state directory has a database and no daemon."""
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port(), smtp_port=free_port()))
    (tmp_path / "state").mkdir()
    made = smsgw(config, "account", "add", "acme")
    assert made.returncode == 0, made.stdout + made.stderr
    return config


def fresh_status(state_dir: Path, pid: int) -> None:
    (state_dir / STATUS_FILE).write_text(
        json.dumps({"pid": pid, "updated_at": time.time(), "links": {}, "workers": {}})
    )


def test_a_live_pid_in_the_status_file_without_the_lock_is_no_daemon(tmp_path: Path) -> None:
    config = state(tmp_path)
    cfg = load_config(config)
    # A process that is alive but is no daemon of this state directory (`cat` waits on its stdin).
    with process("cat") as other:
        fresh_status(cfg.state_dir, other.pid)
        res = smsgw(config, "status")
        assert f"daemon    not running (pid {other.pid} has exited without a clean stop)" in res.stdout, (
            res.stdout + res.stderr
        )
        assert res.returncode == 3, res.stdout + res.stderr
        assert running_pid(cfg) is None  # so no command is refused as "under an older daemon"


def test_a_daemon_holding_the_lock_before_its_first_status_is_starting(tmp_path: Path) -> None:
    config = state(tmp_path)
    cfg = load_config(config)
    (cfg.state_dir / STATUS_FILE).unlink(missing_ok=True)
    with process(sys.executable, "-c", HOLDER, str(cfg.state_dir / LOCK_FILE)) as daemon:
        assert daemon.stdout is not None and daemon.stdout.readline() == "held\n"
        res = smsgw(config, "status")
        assert f"daemon    starting (pid {daemon.pid})" in res.stdout, res.stdout + res.stderr
        assert res.returncode == 1, res.stdout + res.stderr  # not 3: a monitor must not restart it
        assert running_pid(cfg) == daemon.pid
        # A status file left by the daemon killed before it names another pid: still starting.
        with process("cat") as other:
            fresh_status(cfg.state_dir, other.pid)
            res = smsgw(config, "status")
            assert f"daemon    starting (pid {daemon.pid})" in res.stdout, res.stdout + res.stderr
            assert running_pid(cfg) == daemon.pid
