"""The owner or mode an unusable state directory or database is told to change is smsgw's alone, and
only where a change can work.

A state_dir set to a directory of the system's or of many (/var/lib, /opt, the config's own
directory) was told `chown -R nobody: /var/lib`: typed, it gave every other service's files to
smsgw's user. `chown -R` is offered only for a directory that holds smsgw's files alone; any other
is to be replaced by a directory of smsgw's own. A state_dir on a read-only filesystem (a unit's
ProtectSystem=strict) was told a chmod that cannot make it writable; the database file itself was
told `chmod u+rwx` (a file is read and written: u+rw) and `chown -R` of the file (its -wal and -shm
are made in its directory, which is what is to be given). The directory to create was told with
`chown smsgw:` whatever user runs the service, and its path unquoted. The CLI runs here by the full
path of a venv's script, as the user nobody or as root, on real directories and a real read-only
mount.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.store.db import Store
from gateway.store.opening import open_failure
from tests.conftest import config_text, free_port
from tests.test_sudo_full_path import launcher, words
from tests.test_sudo_hints_name_the_command import as_nobody, configured, smsgw, world

__all__ = ["world"]  # the fixture, used by name


def state_at(config: Path, state: str) -> None:
    """`config` with its state_dir set to `state`, as written in the file."""
    text = config.read_text()
    line = text[text.index("state_dir = ") :].split("\n")[0]
    config.write_text(text.replace(line, f'state_dir = "{state}"'))


@pytest.fixture
def read_only_mount(world: Path) -> Iterator[Path]:
    """A real filesystem mounted read-only, as the kernel leaves one after I/O errors."""
    yield from mounted_read_only(world / "ro")


@pytest.fixture
def protected_mount(world: Path) -> Iterator[Path]:
    """A writable filesystem seen through a read-only bind mount, as ProtectSystem=strict leaves /srv
    and /opt to a unit."""
    yield from bound_read_only(world)


def mounted_read_only(point: Path) -> Iterator[Path]:
    """A small tmpfs mounted read-only at `point` for the test's length (skipped where no mount can be
    made: not root, or no mount permitted)."""
    if os.geteuid() != 0:
        pytest.skip("a mount needs root")
    point.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(point)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"no mount here: {made.stderr.decode()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


def bound_read_only(under: Path) -> Iterator[Path]:
    """`under`/ro: a read-only bind mount of a writable tmpfs (statvfs says read-only for it and for
    `mounted_read_only` alike; only /proc/self/mountinfo tells them apart)."""
    if os.geteuid() != 0:
        pytest.skip("a mount needs root")
    disk, view = under / "disk", under / "ro"
    disk.mkdir()
    view.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"no mount here: {made.stderr.decode()}")
    try:
        subprocess.run(["mount", "--bind", str(disk), str(view)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
            yield view
        finally:
            subprocess.run(["umount", str(view)], check=True)
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.parametrize("state", ["/var/lib", "/opt", "."])
def test_a_state_dir_shared_with_other_things_is_never_given_away_whole(world: Path, state: str) -> None:
    program = launcher(world)
    config = configured(world)
    state_at(config, state)
    shown = world if state == "." else Path(state)
    for command in ("run", "check-config"):
        said = words(smsgw(program, world, command, user=as_nobody()).stderr)
        assert f"[gateway] state_dir: {shown} is not writable by this user; it belongs to root:" in said, said
        assert "chown -R" not in said and "chmod" not in said, said
        assert 'give smsgw a directory of its own (e.g. state_dir = "/var/lib/smsgw")' in said, said


def test_a_state_dir_holding_anothers_files_is_not_given_but_one_of_smsgws_files_alone_is(
    world: Path,
) -> None:
    program = launcher(world)
    configured(world)
    state = world / "state"
    Store.open(state / "smsgw.db").close()
    (state / "billing").mkdir()
    (state / "status.json").write_text("{}")
    (state / "selfsigned-cert.pem").write_text("")
    state.chmod(0o755)
    said = words(smsgw(program, world, "run", user=as_nobody()).stderr)
    assert (
        f"[gateway] state_dir: {state} is not writable by this user; it belongs to root: give it to the user"
        f" that runs the service (`chown -R nobody: {state}`) or fix its mode"
    ) in said, said
    (state / "other-app.db").write_text("")  # another program's file: not smsgw's to give
    said = words(smsgw(program, world, "run", user=as_nobody()).stderr)
    assert "chown -R" not in said, said
    assert f"state_dir {state} holds more than smsgw's files (other-app.db...)" in said, said


def test_a_state_dir_on_a_read_only_filesystem_is_told_so_not_a_chmod(protected_mount: Path) -> None:
    world = protected_mount.parent
    program = launcher(world)
    config = configured(world)
    state_at(config, str(protected_mount))
    res = smsgw(program, world, "check-config", user=[])
    said = words(res.stderr)
    assert (
        f"[gateway] state_dir: {protected_mount} is not writable by this user; {protected_mount} is on a"
        f" read-only filesystem, which no chown or chmod changes: under systemd (ProtectSystem=strict) add"
        f" ReadWritePaths={protected_mount} to the unit, or keep state_dir under /var/lib/smsgw"
    ) in said, said
    assert "`chmod" not in said and "`chown" not in said and res.returncode == 3, said
    state_at(config, str(protected_mount / "smsgw"))  # to be created there
    said = words(smsgw(program, world, "check-config", user=[]).stderr)
    assert f"cannot be created: {protected_mount} is on a read-only filesystem" in said, said
    assert "mkdir" not in said, said


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_a_state_dir_on_a_filesystem_read_only_itself_exits_1_saying_to_remount_it(
    read_only_mount: Path, command: str
) -> None:
    # Remounted read-only after I/O errors: ProtectSystem words and exit 3, which the unit does not
    # restart on, so the service stayed stopped after the disk was fixed.
    world = read_only_mount.parent
    program = launcher(world)
    config = configured(world)
    remount = "its filesystem is mounted read-only (after I/O errors? see dmesg): remount it read-write"
    for state, said_of in (
        (read_only_mount, f"is not writable by this user; {read_only_mount}: "),
        (read_only_mount / "smsgw", f"does not exist and cannot be created: {read_only_mount}: "),
    ):
        state_at(config, str(state))
        res = smsgw(program, world, command, user=[])
        said = words(res.stderr)
        assert res.returncode == 1 and f"[gateway] state_dir: {state} {said_of}{remount}" in said, said
        assert "ReadWritePaths" not in said and "ProtectSystem" not in said and "mkdir" not in said, said


def test_a_state_dir_to_create_names_the_service_user_and_quotes_its_path(world: Path) -> None:
    program = launcher(world)
    config = configured(world)
    parent = world / "root's"
    parent.mkdir(mode=0o755)
    state_at(config, str(parent / "new state"))
    said = words(smsgw(program, world, "run", user=as_nobody()).stderr)
    made = "'" + str(parent / "new state").replace("'", "'\"'\"'") + "'"
    assert f"create it: mkdir -p {made} && chown nobody: {made}" in said, said


def test_the_database_file_is_told_u_rw_and_its_directory_given_whole(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A database file of another owner is refused by the CLI before SQLite opens it; one this very user
    # may not write (root's, immutable) reaches the store's own words, asked here in this process.
    program = launcher(world)
    config = configured(world)
    state = world / "state"
    Store.open(state / "smsgw.db").close()
    state.chmod(0o755)
    db = state / "smsgw.db"
    monkeypatch.setattr(sys, "argv", [str(program), "--config", str(config), "queue", "list"])
    with unwritable_file(db):  # root's file, which root too may not write
        said = str(open_failure(db, sqlite3.OperationalError("attempt to write a readonly database")))
    assert (
        f"{db} is not writable by this user (SQLite keeps its -wal and -shm files beside the database);"
        " it belongs to root: give its directory, with the -wal and -shm files beside it, to the user"
        f" that runs the service (`chown -R smsgw: {state}`) or fix its mode"
    ) in said, said
    os.chown(state, 65534, 65534)
    os.chown(db, 65534, 65534)
    db.chmod(0o444)  # the daemon's own file, its mode keeping it out
    said = words(smsgw(program, world, "run", user=as_nobody()).stderr)
    assert f"fix its mode (`chmod u+rw {db}`)" in said, said
    assert "u+rwx" not in said, said


@contextmanager
def unwritable_file(path: Path) -> Iterator[None]:
    """A file root too may not write: immutable (mode 0444 does not stop root)."""
    if os.geteuid() != 0:
        pytest.skip("the immutable attribute needs root")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"no chattr +i here: {made.stderr}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="a directory of another user is made by root")
def test_a_config_given_as_dash_c_equals_is_that_file(tmp_path: Path) -> None:
    # argparse reads `-c=config.toml` as the file config.toml: the line named the config "=config.toml".
    program = launcher(tmp_path)
    (tmp_path / "config.toml").write_text(config_text(tmp_path, smsc_port=free_port()))
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, 65534, 65534)
    res = subprocess.run(
        [str(program), "-c=config.toml", "queue", "list"],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
            "COLUMNS": "100000",
        },
        cwd=tmp_path,
        timeout=60,
    )
    said = words(res.stderr)
    assert f"(`sudo -u nobody {program} --config {tmp_path / 'config.toml'} queue list`)" in said, said
