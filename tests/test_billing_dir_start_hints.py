"""The daemon's start warning for a billing_dir it cannot use names whose it is, who runs, and the fix.

`smsgw run` started by hand as a user other than the service's was told to `chown` the service's
billing directory to itself (the daemon took itself for the service): done, the installed service
could no longer write its bills. Root's run, refused the service's own directory, was told to give
it to the user who owned it already, and a daemon whose own directory only its mode kept it out of
was told to give it to itself. Each now says the directory, its owner, the user the daemon runs as,
and the one command that fixes it. The daemon runs here as a process (`smsgw run`, its relay port
taken so that the start ends after its warnings), as the user nobody or root, on real directories.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests import test_sudo_hints_name_the_command as named
from tests.test_sudo_full_path import ROOT, launcher, words
from tests.test_sudo_hints_name_the_command import as_nobody, configured, world  # noqa: F401

UNITS = [
    Path(d, "smsgw.service")
    for d in ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
]
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="directories of other users are made by root"),
    pytest.mark.skipif(
        any(unit.exists() for unit in UNITS), reason="an installed unit names the service's user"
    ),
]
NOBODY = 65534


def started(world: Path, books: Path, user: list[str], *, systemd: bool = False) -> str:  # noqa: F811
    """The `config.billing_dir_unwritable` warning of `smsgw run` as `user` (a command prefix), with
    `books` as its billing_dir; `systemd`: started as systemd starts a unit (INVOCATION_ID set)."""
    program = launcher(world)
    config = world / "config.toml"
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    text = config.read_text().replace("[gateway]\n", f'[gateway]\nbilling_dir = "{books}"\n', 1)
    config.write_text(text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"', 1))
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT)}
    if systemd:
        env["INVOCATION_ID"] = "0123456789abcdef0123456789abcdef"
    with held:
        done = subprocess.run(
            [*user, str(program), "-c", "config.toml", "run"],
            capture_output=True,
            text=True,
            env=env,
            cwd=world,
            timeout=60,
        )
    said = done.stdout + done.stderr
    logged = [json.loads(line) for line in said.splitlines() if line.startswith("{")]
    found = [e["detail"] for e in logged if e["event"] == "config.billing_dir_unwritable"]
    assert done.returncode != 0 and found, said
    return words(found[0])


def state_of(where: Path, uid: int) -> None:
    state = where / "state"
    state.mkdir(mode=0o700)
    os.chown(state, uid, uid)


def books_of(where: Path, uid: int, mode: int) -> Path:
    books = where / "books"
    books.mkdir()
    books.chmod(mode)
    os.chown(books, uid, -1)
    return books


def sudo_run(where: Path, user: str) -> str:
    return named.line(where / "venv" / "bin" / "smsgw", user, where / "config.toml", "run")


@pytest.mark.parametrize(("whose", "mode"), [("root", 0o755), ("nobody", 0o500)])
def test_the_service_is_told_to_give_its_billing_dir_to_itself_or_to_open_its_own(
    world: Path,  # noqa: F811
    whose: str,
    mode: int,
) -> None:
    # systemd starts the daemon as its user (nobody here): another's directory is given to it; its own,
    # which only its mode keeps it out of, was told `chown nobody:` too, which changes nothing.
    configured(world)
    state_of(world, NOBODY)
    books = books_of(world, 0 if whose == "root" else NOBODY, mode)
    said = started(world, books, as_nobody(), systemd=True)
    cannot = f"{books} is not writable by nobody, the user this daemon runs as"
    if whose == "root":
        fix = f"`chown nobody: {books}`"
        expected = f"{cannot}; it belongs to root (mode 0755), and the service runs as nobody: {fix}"
    else:
        expected = f"{cannot}, and its owner: its mode (0500) keeps it out; `chmod u+rwx {books}`"
        assert "chown" not in said, said
    assert expected in said, said
    assert "sudo" not in said, said


@pytest.mark.parametrize("whose", ["the service's", "root's", "none yet, under root's"])
def test_a_daemon_started_by_hand_as_another_user_is_told_to_start_as_the_services_user(
    world: Path,  # noqa: F811
    whose: str,
) -> None:
    # The config given to the service's group, as install-service does; nobody starts `smsgw run` by
    # hand. It was told `chown nobody: BOOKS`: the installed service then lost its own bills.
    service = named.another_user()
    config = configured(world)
    os.chown(config, -1, service.pw_gid)
    state_of(world, NOBODY)
    owned = (service.pw_uid, 0o750) if whose == "the service's" else (0, 0o755)
    books = books_of(world, *owned)
    if whose.startswith("none"):
        books /= "billing"
    said = started(world, books, as_nobody())
    cannot = f"{books} is not writable by nobody, the user this daemon runs as"
    start_as = f"start the daemon as {service.pw_name} (`{sudo_run(world, service.pw_name)}`)"
    if whose == "the service's":
        expected = f"{cannot}; it belongs to {service.pw_name}, the service's user: {start_as}"
    elif whose == "root's":
        expected = (
            f"{cannot}; it belongs to root (mode 0755), and the service runs as {service.pw_name}:"
            f" `chown {service.pw_name}: {books}`, then {start_as}"
        )
    else:
        expected = (
            f"{books} does not exist, and nobody, the user this daemon runs as, cannot create it"
            f" ({books.parent} belongs to root, mode 0755); create it:"
            f" `mkdir -p {books} && chown {service.pw_name}: {books}`, then {start_as}"
        )
    assert expected in said, said
    assert "chown nobody" not in said, said


def test_root_starting_the_daemon_by_hand_is_told_to_start_it_as_the_owner_of_the_services_billing_dir(
    world: Path,  # noqa: F811
) -> None:
    # Root's billing run refuses another user's directory; root was told `chown USER:` to its owner.
    service = named.another_user()
    config = configured(world)
    os.chown(config, -1, service.pw_gid)
    state_of(world, 0)
    books = books_of(world, service.pw_uid, 0o750)
    said = started(world, books, [])
    assert (
        f"{books} belongs to user {service.pw_name}, and this daemon runs as root; its billing run refuses"
        f" a directory of another user's: start the daemon as {service.pw_name}"
        f" (`{sudo_run(world, service.pw_name)}`)"
    ) in said, said
    assert "chown" not in said, said


def test_a_daemon_started_by_hand_by_its_billing_dirs_owner_is_told_to_open_it_not_to_take_it(
    world: Path,  # noqa: F811
) -> None:
    # No unit, no service's group: whoever starts it by hand is the service. Its own directory of
    # mode 0500 was told `chown nobody:`, to nobody, who owned it already.
    configured(world)
    state_of(world, NOBODY)
    books = books_of(world, NOBODY, 0o500)
    said = started(world, books, as_nobody())
    assert (
        f"{books} is not writable by nobody, the user this daemon runs as, and its owner: its mode (0500)"
        f" keeps it out; `chmod u+rwx {books}`"
    ) in said, said
    assert "chown" not in said and "sudo" not in said, said
