"""The hints to run as the service's user name the command to type, whole.

A state directory, a database's directory, a certificate or a capture directory this user may not
use was said with `(sudo -u smsgw ...)`: no program (sudo's PATH has no venv in it), no config
(sudo drops $SMSGW_CONFIG; a relative path is read from a directory the service's user may not
enter) and no command, so the line copied ran nothing. A directory owned by a uid with no name was
named by the bare number, which sudo reads as a user's name (it takes `#uid`, quoted from the
shell). The CLI runs here as sudo runs it, by the full path of a venv's script, as root without its
power to write anywhere, on real directories.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from gateway.store.db import Store
from tests.conftest import config_text, free_port, unwritable
from tests.test_backup_after_crash import without_dac_override
from tests.test_sudo_full_path import ROOT, launcher, words

NAMELESS_UID = 54321  # no user of the machine has it


def smsgw(program: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`program` with a config given by a path relative to `cwd`, as root without DAC override."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT)}
    env["COLUMNS"] = "100000"
    command = [*without_dac_override(), str(program), "-c", "config.toml", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def configured(tmp_path: Path, *, smtp: str = "", relay: str | None = None) -> Path:
    text = config_text(tmp_path, smsc_port=free_port())
    text = text.replace('submission_listen = "127.0.0.1:0"\n', f'submission_listen = "127.0.0.1:0"\n{smtp}')
    if relay is not None:
        text = text.replace(text[text.index('relay = "') :].split("\n")[0], f'relay = "{relay}"')
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o640)
    return config


def line(program: Path, user: str, config: Path, *command: str) -> str:
    """The line the hint is to say, as sudo is to run it."""
    return f"sudo -u {user} {shlex.join([str(program), '--config', str(config), *command])}"


@pytest.mark.skipif(os.geteuid() != 0, reason="a directory of another user is made by root")
def test_a_state_dir_it_may_not_write_names_its_owner_and_the_command(tmp_path: Path) -> None:
    program = launcher(tmp_path)
    config = configured(tmp_path)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)  # nobody's
    res = smsgw(program, tmp_path, "--log-level", "INFO", "check-config")
    assert res.returncode == 3, res.stderr
    said = words(res.stderr)
    assert f"(`{line(program, 'nobody', config, '--log-level', 'INFO', 'check-config')}`)" in said, said
    os.chown(state, NAMELESS_UID, NAMELESS_UID)  # a uid with no name, as a backup from elsewhere leaves
    said = words(smsgw(program, tmp_path, "check-config").stderr)
    assert f"(`{line(program, shlex.quote(f'#{NAMELESS_UID}'), config, 'check-config')}`)" in said, said
    assert f"sudo -u {NAMELESS_UID} " not in said


def test_a_database_in_a_directory_it_may_not_write_names_the_command(tmp_path: Path) -> None:
    program = launcher(tmp_path)
    config = configured(tmp_path)
    Store.open(tmp_path / "state" / "smsgw.db").close()  # its -wal and -shm go with the close
    with unwritable(tmp_path / "state"):
        res = smsgw(program, tmp_path, "queue", "list", "--limit", "5")
    assert res.returncode == 3, res.stderr
    said = words(res.stderr)
    assert "is not writable by this user (SQLite keeps its -wal and -shm files" in said, said
    assert f"(`{line(program, 'smsgw', config, 'queue', 'list', '--limit', '5')}`)" in said, said


def test_files_it_may_not_read_or_write_under_name_the_command(tmp_path: Path) -> None:
    program = launcher(tmp_path)
    closed = tmp_path / "closed"
    closed.mkdir()
    smtp = f'tls_cert_file = "{closed}/cert.pem"\ntls_key_file = "{closed}/key.pem"\n'
    config = configured(tmp_path, smtp=smtp, relay=f"maildir:{closed}/mail")
    (tmp_path / "state").mkdir(mode=0o700)
    closed.chmod(0)
    try:
        res = smsgw(program, tmp_path, "check-config")
    finally:
        closed.chmod(0o700)
    assert res.returncode == 3, res.stderr
    said = words(res.stderr)
    hint = f"(`{line(program, 'smsgw', config, 'check-config')}`)"
    assert f"[smtp] tls_cert_file: cannot read {closed}/cert.pem: permission denied" in said, said
    assert f"[mail] relay: the maildir {closed}/mail cannot be created" in said, said
    assert said.count(hint) == 3, said  # the certificate, its key and the maildir
    assert "sudo -u smsgw ...)" not in said
