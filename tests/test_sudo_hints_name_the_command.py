"""The hints to run as the service's user name the command to type, whole, and only where it can work.

A state directory, a database's directory, a certificate or a capture directory this user may not
use was said with `(sudo -u smsgw ...)`: no program (sudo's PATH has no venv in it), no config
(sudo drops $SMSGW_CONFIG; a relative path is read from a directory the service's user may not
enter) and no command, so the line copied ran nothing. Where no sudo line can work it is not said:
a directory of a uid with no name (sudo refuses `-u '#54321'` by default: `runas_allow_unknown_id`
is off) is to be given to the service's user, and one root owns, or the user running now, is not
opened by running as anyone else (the daemon, already the service's user, was told to run itself
again as `smsgw`): the hint says whose it is and the `chown` or `chmod` to type. The CLI runs here as
sudo runs it, by the full path of a venv's script, as root without its power to write anywhere or
as the user nobody, on real directories.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store.db import Store
from tests.conftest import config_text, free_port, unwritable
from tests.test_backup_after_crash import without_dac_override
from tests.test_sudo_full_path import ROOT, launcher, words

NAMELESS_UID = 54321  # no user of the machine has it


def smsgw(
    program: Path, cwd: Path, *args: str, user: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`program` with a config given by a path relative to `cwd`, as root without DAC override (or
    as `user`, a command prefix)."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT)}
    env["COLUMNS"] = "100000"
    command = [*(without_dac_override() if user is None else user), str(program), "-c", "config.toml", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def as_nobody() -> list[str]:
    """The command prefix that runs the CLI as the user nobody. It may read what root may (the
    interpreter of these tests may lie under a home only root enters), and write only as nobody."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("another user's run needs root and setpriv")
    caps = "+dac_read_search"
    return [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        f"--inh-caps={caps}",
        f"--ambient-caps={caps}",
        "--",
    ]


@pytest.fixture
def world() -> Iterator[Path]:
    """A directory every user may enter, so that what nobody may write is told honestly by access(2)
    (pytest's own directories are root's, mode 0700); removed after."""
    made = Path(tempfile.mkdtemp(prefix="smsgw-hints-"))
    made.chmod(0o755)
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


def another_user() -> pwd.struct_passwd:
    """A user with a name, neither root nor nobody, whose group has its name (as useradd makes one)."""
    import grp

    for user in pwd.getpwall():
        if user.pw_uid not in (0, 65534) and any(g.gr_name == user.pw_name for g in grp.getgrall()):
            return user
    pytest.skip("no user here but root and nobody")


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


@pytest.mark.skipif(os.geteuid() != 0, reason="a directory of another user is made by root")
def test_a_state_dir_of_a_uid_with_no_name_is_to_be_given_to_the_service_user(tmp_path: Path) -> None:
    # `sudo -u '#54321' ...` was said: sudo answers "unknown user #54321" unless told to allow it.
    program = launcher(tmp_path)
    configured(tmp_path)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, NAMELESS_UID, NAMELESS_UID)  # a uid with no name, as a backup from elsewhere leaves
    said = words(smsgw(program, tmp_path, "check-config").stderr)
    assert (
        f"[gateway] state_dir: {state} is not writable by this user; {state} belongs to uid {NAMELESS_UID},"
        " which has no user on this machine (restored from another machine's backup?): give it to the user"
        f" that runs the service (`chown -R smsgw: {state}`)"
    ) in said, said
    assert "sudo" not in said, said


def test_a_database_in_a_directory_root_owns_is_to_be_given_to_the_service_user(tmp_path: Path) -> None:
    # Root's own directory is not opened by running as anyone else: `sudo -u smsgw ...` was said.
    program = launcher(tmp_path)
    configured(tmp_path)
    state = tmp_path / "state"
    Store.open(state / "smsgw.db").close()  # its -wal and -shm go with the close
    with unwritable(state):
        res = smsgw(program, tmp_path, "queue", "list", "--limit", "5")
    assert res.returncode == 3, res.stderr
    said = words(res.stderr)
    assert "is not writable by this user (SQLite keeps its -wal and -shm files" in said, said
    if os.geteuid() == 0:
        assert (
            f"it belongs to root: give it to the user that runs the service (`chown -R smsgw: {state}`)"
            in said
        )
    else:  # this very user's
        assert f"it belongs to {pwd.getpwuid(os.geteuid()).pw_name}" in said, said
    assert "sudo" not in said, said


def test_a_database_of_another_user_names_the_command_to_type_as_that_user(world: Path) -> None:
    program = launcher(world)
    config = configured(world)
    state = world / "state"
    Store.open(state / "smsgw.db").close()
    state.chmod(0o755)
    owner = another_user()
    os.chown(state, owner.pw_uid, owner.pw_gid)
    for path in state.iterdir():  # the files nobody's, as a command run as nobody left them
        os.chown(path, 65534, 65534)
    res = smsgw(program, world, "queue", "list", "--limit", "5", user=as_nobody())
    assert res.returncode == 3, res.stderr
    said = words(res.stderr)
    assert "is not writable by this user (SQLite keeps its -wal and -shm files" in said, said
    assert f"(`{line(program, owner.pw_name, config, 'queue', 'list', '--limit', '5')}`)" in said, said


def test_the_daemon_on_a_state_dir_root_owns_is_told_to_give_it_to_itself_not_to_run_as_smsgw(
    world: Path,
) -> None:
    # As nobody on a directory of root's: `sudo -u smsgw ... run --json-logs` was said (an unknown user
    # where the service's is named otherwise, and the daemon, already the service's user, told to run
    # itself again as it).
    program = launcher(world)
    configured(world)
    state = world / "state"
    state.mkdir(mode=0o755)
    res = smsgw(program, world, "run", "--json-logs", user=as_nobody())
    assert res.returncode == 3, res.stderr
    said = words(res.stderr)
    assert (
        f"[gateway] state_dir: {state} is not writable by this user; it belongs to root: give it to the user"
        f" that runs the service (`chown -R nobody: {state}`) or fix its mode"
    ) in said, said
    assert "sudo" not in said, said
    # A command other than the daemon names the user the config is given to (install-service: root:USER).
    owner = another_user()
    os.chown(world / "config.toml", 0, owner.pw_gid)
    said = words(smsgw(program, world, "check-config", user=as_nobody()).stderr)
    assert (
        f"it belongs to root: give it to the user that runs the service (`chown -R {owner.pw_name}: {state}`)"
        in said
    )
    assert "sudo" not in said, said


def test_the_daemons_own_directory_it_may_not_write_is_told_its_mode(world: Path) -> None:
    program = launcher(world)
    configured(world)
    state = world / "state"
    state.mkdir(mode=0o555)
    os.chown(state, 65534, 65534)
    res = smsgw(program, world, "run", user=as_nobody())
    assert res.returncode == 3, res.stderr
    said = words(res.stderr)
    assert (
        f"[gateway] state_dir: {state} is not writable by this user; it belongs to nobody, the user that runs"
        f" the service: fix its mode (`chmod u+rwx {state}`)"
    ) in said, said
    assert "sudo" not in said, said


@pytest.mark.skipif(os.geteuid() != 0, reason="a directory of another user is made by root")
def test_files_it_may_not_read_or_write_under_name_the_command(tmp_path: Path) -> None:
    program = launcher(tmp_path)
    closed = tmp_path / "closed"
    closed.mkdir()
    smtp = f'tls_cert_file = "{closed}/cert.pem"\ntls_key_file = "{closed}/key.pem"\n'
    config = configured(tmp_path, smtp=smtp, relay=f"maildir:{closed}/mail")
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, 65534, 65534)  # the service's user: nobody, here
    state.chmod(0o777)  # which this user may write too: only the files are in the way
    closed.chmod(0)
    try:
        res = smsgw(program, tmp_path, "check-config")
    finally:
        closed.chmod(0o700)
    assert res.returncode == 3, res.stderr
    said = words(res.stderr)
    hint = f"(`{line(program, 'nobody', config, 'check-config')}`)"
    assert f"[smtp] tls_cert_file: cannot read {closed}/cert.pem: permission denied" in said, said
    assert f"[mail] relay: the maildir {closed}/mail cannot be created" in said, said
    assert said.count(hint) == 3, said  # the certificate, its key and the maildir
    assert "sudo -u smsgw ...)" not in said
    # The state directory root's (or this user's): no one to run as, the service's user named instead.
    os.chown(state, os.geteuid(), os.getegid())
    closed.chmod(0)
    try:
        said = words(smsgw(program, tmp_path, "check-config").stderr)
    finally:
        closed.chmod(0o700)
    assert "sudo" not in said, said
    told = "for this user; fix the file's owner or mode (the service runs as smsgw)"
    assert f"cannot read {closed}/cert.pem: permission denied {told}" in said, said
    assert "for this user; choose a directory the service may write (the service runs as smsgw)" in said, said
