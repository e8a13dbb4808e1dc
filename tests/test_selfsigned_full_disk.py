"""`smsgw tls selfsigned` on a full state disk says the room left and what to do, as every other
command does: it said only "cannot write the certificate into …: No space left on device"."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import config_text, free_port
from tests.test_cli_errors import one_line, run, write_config
from tests.test_disk_full_wal import fill, small_tmpfs


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")
def test_tls_selfsigned_on_a_full_state_disk_says_the_room_left(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with small_tmpfs(state, 4 * 1024 * 1024):
        config = write_config(tmp_path, config_text(tmp_path, smsc_port=free_port()))
        fill(state / "filler", 0)
        made = run(config, "tls", "selfsigned", "--force")
        left = sorted(p.name for p in state.iterdir() if p.name != "filler")
    assert made.returncode == 1, made.stderr
    said = one_line(made)
    assert f"cannot write the certificate into {state}: No space left on device" in said, said
    assert f"bytes free on the filesystem of {state}: free space there (or grow it)" in said, said
    assert not [name for name in left if name.startswith(".selfsigned")], left  # no key left in a work dir
