"""Permission hints name the user that runs the daemon, and the daemon is not told to become itself.

With no unit installed the daemon is started by hand, as the user starting it: `run` said
`chown nobody:` where check-config, for the same state directory, said `(the service runs as smsgw)`
and `chown smsgw:`. And the daemon's own `config.billing_dir_unwritable` told it to run as the
service's user (`sudo -u smsgw ...`), though it is the service. The CLI and the daemon run here as
processes, as the user nobody, on real directories.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from tests import test_sudo_hints_name_the_command as named
from tests.test_owner_hints_give_only_smsgws import state_at
from tests.test_sudo_full_path import launcher, words
from tests.test_sudo_hints_name_the_command import as_nobody, configured, smsgw, world  # noqa: F401

UNITS = [
    Path(d, "smsgw.service")
    for d in ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
]
pytestmark = pytest.mark.skipif(
    any(unit.exists() for unit in UNITS), reason="an installed unit names the service's user"
)


def test_check_config_names_the_user_running_it_as_run_does_with_no_unit_installed(world: Path) -> None:  # noqa: F811
    program = launcher(world)
    config = configured(world)
    parent = world / "roots"
    parent.mkdir(mode=0o755)
    state_at(config, str(parent / "state"))
    for command in ("check-config", "run"):
        said = words(smsgw(program, world, command, user=as_nobody()).stderr)
        assert f"create it: mkdir -p {parent / 'state'} && chown nobody: {parent / 'state'}" in said, said
        assert "chown smsgw:" not in said and "runs as smsgw" not in said, said


def test_the_daemons_billing_dir_warning_does_not_tell_it_to_run_as_another_user(world: Path) -> None:  # noqa: F811
    program = launcher(world)
    config = configured(world)
    state = world / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    books = world / "books"  # root's: the daemon, as nobody, cannot write the month's files there
    books.mkdir(mode=0o755)
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()  # the relay port taken: the start ends, after its warnings
    port = held.getsockname()[1]
    text = config.read_text().replace("[gateway]\n", f'[gateway]\nbilling_dir = "{books}"\n', 1)
    config.write_text(text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"', 1))
    with held:
        done = smsgw(program, world, "run", user=as_nobody())
    said = done.stdout + done.stderr
    logged = [json.loads(line) for line in said.splitlines() if line.startswith("{")]
    found = [e["detail"] for e in logged if e["event"] == "config.billing_dir_unwritable"]
    assert done.returncode != 0 and found, said
    warning = words(found[0])
    assert f"{books} is not writable by nobody, the user this daemon runs as;" in warning, warning
    assert f"`chown nobody: {books}`" in warning and "sudo" not in warning, warning


@pytest.mark.parametrize("whose", ["root's", "another user's", "the service's"])
def test_check_config_names_the_user_running_it_for_a_billing_dir_it_cannot_use(
    world: Path,  # noqa: F811
    whose: str,
) -> None:
    # Both said `smsgw` while the same command's state_dir hints said `nobody`: `sudo -u smsgw ...`
    # for a directory it may not write, `chown smsgw:` for another user's.
    program = launcher(world)
    config = configured(world)
    state = world / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    books = world / "books"
    if whose == "root's":  # not writable by nobody
        books.mkdir(mode=0o755)
        expected = (
            f"not writable by this user; give it to the user that runs the service (`chown nobody: {books}`"
        )
    elif whose == "the service's":  # the config given to its group, as install-service does
        service = named.another_user()
        books.mkdir(mode=0o755)
        os.chown(books, service.pw_uid, -1)
        os.chown(config, -1, service.pw_gid)
        expected = f"not writable by this user; run as the service's user (`sudo -u {service.pw_name} "
    else:  # writable, but another's, who could plant links in it: the run refuses it
        books.mkdir()
        books.chmod(0o777)
        os.chown(books, named.another_user().pw_uid, -1)
        expected = f"files they read; give it to the user that runs the service (`chown nobody: {books}`)"
    config.write_text(config.read_text().replace("[gateway]\n", f'[gateway]\nbilling_dir = "{books}"\n', 1))
    said = words(smsgw(program, world, "check-config", user=as_nobody()).stderr)
    assert expected in said, said
    assert "chown smsgw" not in said and "sudo -u smsgw" not in said, said


def test_root_is_told_to_check_the_services_own_billing_dir_as_the_service(world: Path) -> None:  # noqa: F811
    # As installed: the config given to the service's group, its directories to the service's user.
    # Root's check-config said "chown USER:" to the user who owned it already.
    program = launcher(world)
    config = configured(world)
    service = named.another_user()
    os.chown(config, -1, service.pw_gid)
    state, books = world / "state", world / "books"
    for made in (state, books):
        made.mkdir(mode=0o750)
        os.chown(made, service.pw_uid, service.pw_gid)
    config.write_text(config.read_text().replace("[gateway]\n", f'[gateway]\nbilling_dir = "{books}"\n', 1))
    said = words(smsgw(program, world, "check-config", user=[]).stderr)
    assert (
        f"{books} belongs to user {service.pw_name}, the service's user, whose directory a run by this user"
        f" refuses; run as the service's user (`sudo -u {service.pw_name} "
    ) in said, said
    assert f"chown {service.pw_name}:" not in said, said
