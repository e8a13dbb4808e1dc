"""`smsgw install-service` run again: the low-port drop-in follows the config the service runs with.

A re-run without `--force` keeps the config; the drop-in went by the re-run's flags, so a kept config
on port 25 lost it and the next restart could not bind the port. Real files under `--root`, the
command in a subprocess as an admin runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gateway.cli.servicefiles import LOW_PORT_DROPIN

CLI = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[1]
HIGH = ("--listen", "0.0.0.0:2525", "--submission", "0.0.0.0:2587")


def install(root: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    res = subprocess.run(
        [*CLI, "install-service", "--root", str(root), "--hostname", "gw.example.com", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def dropin(root: Path) -> Path:
    return root / "etc/systemd/system/smsgw.service.d/low-port.conf"


def edit_config(root: Path, old: str, new: str) -> None:
    config = root / "etc/smsgw/config.toml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))


def test_a_kept_config_on_port_25_keeps_its_drop_in_whatever_the_flags(tmp_path: Path) -> None:
    install(tmp_path)
    assert dropin(tmp_path).read_text() == LOW_PORT_DROPIN
    out = install(tmp_path, *HIGH)  # the flags' ports go nowhere: the config is kept
    assert "kept" in out and "removed" not in out
    assert 'listen = "0.0.0.0:25"' in (tmp_path / "etc/smsgw/config.toml").read_text()
    assert dropin(tmp_path).read_text() == LOW_PORT_DROPIN
    assert "low-port.conf" not in out  # as it was: not said as written again


def test_a_kept_config_moved_off_low_ports_gets_no_drop_in_from_default_flags(tmp_path: Path) -> None:
    install(tmp_path, *HIGH)
    assert not dropin(tmp_path).exists()
    edit_config(tmp_path, 'listen = "0.0.0.0:2525"', 'listen = "0.0.0.0:25"')
    install(tmp_path, *HIGH)  # the admin moved the kept config to 25: it needs the drop-in
    assert dropin(tmp_path).read_text() == LOW_PORT_DROPIN
    edit_config(tmp_path, 'listen = "0.0.0.0:25"', 'listen = "0.0.0.0:2525"')
    out = install(tmp_path)  # default flags say 25 and 587; the kept config listens above 1023
    assert not dropin(tmp_path).exists()
    assert "removed" in out


def test_the_panel_on_a_low_port_needs_the_drop_in_too(tmp_path: Path) -> None:
    install(tmp_path, *HIGH)
    edit_config(tmp_path, 'listen = "127.0.0.1:8080"', 'listen = "127.0.0.1:443"')
    out = install(tmp_path, *HIGH)
    assert dropin(tmp_path).read_text() == LOW_PORT_DROPIN
    assert "[web] listen port 443" in out


def test_a_drop_in_changed_by_hand_is_never_replaced_nor_removed(tmp_path: Path) -> None:
    install(tmp_path)
    changed = LOW_PORT_DROPIN + "# also for the panel on 443\n"
    dropin(tmp_path).write_text(changed)
    install(tmp_path)
    assert dropin(tmp_path).read_text() == changed
    out = install(tmp_path, "--force", *HIGH)  # a new config above 1023
    assert dropin(tmp_path).read_text() == changed
    assert "changed by hand" in out
    # The one install-service wrote (the shipped file's text) goes with the last low port.
    dropin(tmp_path).write_text(LOW_PORT_DROPIN)
    install(tmp_path, *HIGH)
    assert not dropin(tmp_path).exists()


def test_a_kept_config_that_cannot_be_read_leaves_the_drop_in_as_it_is(tmp_path: Path) -> None:
    install(tmp_path)
    (tmp_path / "etc/smsgw/config.toml").write_text("[smtp\n")
    out = install(tmp_path, *HIGH)
    assert dropin(tmp_path).read_text() == LOW_PORT_DROPIN
    assert "left" in out and "as it is" in out


def test_a_re_run_mends_the_drop_ins_mode_as_it_did_when_it_wrote_it_again(tmp_path: Path) -> None:
    """A re-run that finds the drop-in's text as it should be writes nothing, but its mode is still
    put back (a world-writable drop-in lets anyone give the service more rights)."""
    install(tmp_path)
    dropin(tmp_path).chmod(0o666)
    install(tmp_path)
    assert dropin(tmp_path).stat().st_mode & 0o777 == 0o644
