"""The daemon systemd started is told no sudo line, by one rule (`gateway.sudoline.sudo_line`) for
every hint.

The rule lived in the billing_dir check alone: the daemon's state_dir hint (`owner_remedy`, as
`state_dir_problem` says it at `smsgw run`) still told it to run as the directory's owner
(`sudo -u nobody ...`), though it is the service: what to change is the owner or the mode. The same
hint to another command keeps its line, and so does `smsgw run` started by hand as another user:
told to give the service's directory to that user, the admin broke the installed service. In
process, on a real directory given to the user nobody.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from gateway.sudoline import owner_remedy, sudo_line, the_daemon, the_service

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="gives a directory to another user")
NOBODY = 65534


def nobodys(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    os.chown(path, NOBODY, NOBODY)
    return path


def as_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str, *, by_systemd: bool = False
) -> None:
    monkeypatch.setattr(sys, "argv", ["/usr/bin/smsgw", "--config", str(tmp_path / "config.toml"), command])
    if by_systemd:  # as systemd sets it for each run of a unit
        monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
    else:
        monkeypatch.delenv("INVOCATION_ID", raising=False)


def test_the_daemons_state_dir_hint_names_no_sudo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = nobodys(tmp_path)
    as_command(monkeypatch, tmp_path, "run", by_systemd=True)
    assert the_service() and sudo_line(path) is None
    said = owner_remedy(path)
    assert "sudo" not in said and "chown" in said, said


def test_another_commands_hint_keeps_its_sudo_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = nobodys(tmp_path)
    as_command(monkeypatch, tmp_path, "check-config")
    assert not the_daemon()
    assert "sudo -u nobody" in owner_remedy(path)
    assert sudo_line(path, daemon=True) is None  # the billing_dir check's own say, by the same rule


def test_a_daemon_run_by_hand_as_another_user_is_told_to_run_as_the_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = nobodys(tmp_path)
    as_command(monkeypatch, tmp_path, "run")
    assert the_daemon() and not the_service()
    said = owner_remedy(path)
    assert "sudo -u nobody" in said and "chown" not in said, said
    assert sudo_line(path, daemon=True) is None  # where the caller knows it is the service
