"""The unit `smsgw install-service` writes opens every directory the config has the daemon write
outside /var/lib/smsgw, not billing_dir alone.

ProtectSystem=strict leaves only the StateDirectory writable: a state_dir elsewhere stopped the service
at its start, a `maildir:` relay elsewhere failed every mail (check-config said "Read-only file system"
with no word of the unit), the simulator's log elsewhere its start. Real files under `--root`, the
command in a subprocess as an admin runs it; check-config on a real read-only mount.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli.common import CliError
from gateway.cli.servicefiles import writable_paths
from gateway.config import Config, parse_config
from gateway.readonlyfs import filesystem_read_only
from tests.conftest import config_text
from tests.test_install_service_rerun import CLI, ROOT, config, install, unit
from tests.test_owner_hints_give_only_smsgws import bound_read_only, mounted_read_only


def _config(tmp_path: Path, state_dir: str, relay: str = "", simulator_log: str = "") -> Config:
    text = config_text(tmp_path, smsc_port=2775)
    text = text.replace(f'state_dir = "{tmp_path / "state"}"', f'state_dir = "{state_dir}"')
    if relay:
        text = text.replace(text[text.index('relay = "') :].split("\n")[0], f'relay = "{relay}"')
    if simulator_log:
        text = text.replace(
            "[simulator]\nenabled = false", f'[simulator]\nenabled = true\nlog = "{simulator_log}"'
        )
    return parse_config(text, source="test", base_dir=Path("/etc/smsgw"))


def test_state_dir_maildir_and_simulator_log_outside_the_state_directory_are_opened(tmp_path: Path) -> None:
    inside = _config(tmp_path, "/var/lib/smsgw", "maildir:/var/lib/smsgw/mail", "/var/lib/smsgw/sim.jsonl")
    assert writable_paths(inside) == []  # the shipped layout: StateDirectory= is writable
    outside = _config(tmp_path, "/srv/smsgw", "maildir:/srv/mail", "/srv/sim/simulator.jsonl")
    assert writable_paths(outside) == [Path("/srv/smsgw"), Path("/srv/mail"), Path("/srv/sim")]
    # Its billing/ and a maildir within the state directory are opened with it; relative: beside the config.
    nested = _config(tmp_path, "/srv/smsgw", "maildir:/srv/smsgw/mail", "var/simulator.jsonl")
    assert writable_paths(nested) == [Path("/srv/smsgw"), Path("/etc/smsgw/var")]
    wider = _config(
        tmp_path, "/srv/smsgw/state", "", "/srv/smsgw/simulator.jsonl"
    )  # the later holds the first
    assert writable_paths(wider) == [Path("/srv/smsgw")]


def test_install_service_opens_and_makes_the_state_dir_and_maildir_of_the_kept_config(tmp_path: Path) -> None:
    install(tmp_path)
    text = config(tmp_path).read_text()
    relay = text[text.index('relay = "') :].split("\n")[0]
    text = text.replace('state_dir = "/var/lib/smsgw"', 'state_dir = "/srv/smsgw"')
    config(tmp_path).write_text(text.replace(relay, 'relay = "maildir:/srv/mail"'))
    out = install(tmp_path)  # the config is kept; the unit is written again for it
    written = unit(tmp_path).read_text()
    assert "ReadWritePaths=/srv/smsgw\nReadWritePaths=/srv/mail\n" in written, written
    assert "/srv/smsgw: [gateway] state_dir, writable for the service (ReadWritePaths=)" in out, out
    assert '/srv/mail: [mail] relay "maildir:", writable for the service (ReadWritePaths=)' in out, out
    assert (tmp_path / "srv/smsgw").is_dir() and (tmp_path / "srv/mail").is_dir()


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem mounted read-only, as the kernel leaves one after I/O errors."""
    yield from mounted_read_only(tmp_path / "ro")


@pytest.fixture
def protected_mount(tmp_path: Path) -> Iterator[Path]:
    """A writable filesystem seen through a read-only bind mount, as ProtectSystem=strict leaves /srv
    to a unit (statvfs says read-only for both this and `read_only_mount`)."""
    yield from bound_read_only(tmp_path)


def test_a_maildir_on_a_read_only_bind_mount_is_told_the_units_read_write_paths(
    protected_mount: Path,
) -> None:
    from tests.test_config_checks import smsgw
    from tests.test_sudo_hints_name_the_command import configured

    assert os.statvfs(protected_mount).f_flag & os.ST_RDONLY and not filesystem_read_only(protected_mount)
    mail = protected_mount / "mail"
    path = configured(protected_mount.parent, relay=f"maildir:{mail}")
    res = smsgw("--config", str(path), "check-config")
    assert res.returncode == 3 and "Traceback" not in res.stderr, res.stderr
    said = " ".join(res.stderr.split())
    assert (
        f"[mail] relay: the maildir {mail} cannot be created: {mail}: Read-only file system, which no chown"
        f" or chmod changes: under systemd (ProtectSystem=strict) add ReadWritePaths={mail} to the unit"
        " (install-service, run again, adds it), or keep the maildir under /var/lib/smsgw"
    ) in said, said


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_a_maildir_on_a_filesystem_read_only_itself_exits_1_saying_to_remount_it(
    read_only_mount: Path, command: str
) -> None:
    # A filesystem the kernel remounted read-only after I/O errors: exit 3 (which the unit does not
    # restart on) with advice of ReadWritePaths= and ProtectSystem, which cannot help.
    from tests.test_config_checks import smsgw
    from tests.test_sudo_hints_name_the_command import configured

    assert filesystem_read_only(read_only_mount)
    mail = read_only_mount / "mail"
    path = configured(read_only_mount.parent, relay=f"maildir:{mail}")
    res = smsgw("--config", str(path), command)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    said = " ".join(res.stderr.split())
    assert (
        f"smsgw: [mail] relay: the maildir {mail} cannot be created: {mail}: Read-only file system: its"
        " filesystem is mounted read-only (after I/O errors? see dmesg): remount it read-write"
    ) in said, said
    assert "ReadWritePaths" not in said and "ProtectSystem" not in said, said


def test_a_billing_dir_on_a_filesystem_read_only_itself_exits_1_saying_to_remount_it(
    read_only_mount: Path,
) -> None:
    # As for the maildir: check-config said to name it in the unit's ReadWritePaths=, and exited 3.
    from tests.test_config_checks import smsgw
    from tests.test_sudo_hints_name_the_command import configured

    books = read_only_mount / "books"
    path = configured(read_only_mount.parent)
    path.write_text(path.read_text().replace("[gateway]\n", f'[gateway]\nbilling_dir = "{books}"\n', 1))
    res = smsgw("--config", str(path), "check-config")
    said = " ".join(res.stderr.split())
    assert res.returncode == 1 and "Traceback" not in said, said
    assert (
        f"smsgw: [gateway] billing_dir: {read_only_mount}: its filesystem is mounted read-only (after I/O"
        " errors? see dmesg): remount it read-write"
    ) in said, said
    assert "ReadWritePaths" not in said, said


def test_a_simulator_log_directly_in_var_log_is_refused_naming_a_directory_of_its_own(tmp_path: Path) -> None:
    # /var/log opened whole is still root's (755): the smsgw user could not create the log, the
    # simulator's start failed, and install-service had said it "writable for the service".
    with pytest.raises(CliError, match=r"choose a directory of its own, e\.g\. /var/log/smsgw"):
        writable_paths(_config(tmp_path, "/var/lib/smsgw", "", "/var/log/simulator.jsonl"))
    with pytest.raises(CliError, match=r"\[gateway\] state_dir: /srv is a directory of the system's"):
        writable_paths(_config(tmp_path, "/srv"))
    assert writable_paths(_config(tmp_path, "/var/lib/smsgw", "", "/var/log/smsgw/simulator.jsonl")) == [
        Path("/var/log/smsgw")
    ]
    install(tmp_path)
    text = config(tmp_path).read_text()
    simulator = '[simulator]\nenabled = false\nlog = "/var/lib/smsgw/simulator.jsonl"'
    assert simulator in text
    config(tmp_path).write_text(
        text.replace(simulator, '[simulator]\nenabled = true\nlog = "/var/log/sim.jsonl"')
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    res = subprocess.run(
        [*CLI, "install-service", "--root", str(tmp_path), "--hostname", "gw.example.com"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )  # fmt: skip
    assert res.returncode == 3, res
    said = " ".join(res.stderr.split())
    assert "[simulator] log: /var/log is a directory of the system's" in said, said
    assert "e.g. /var/log/smsgw" in said and "Traceback" not in said, said
    assert "/var/log" not in unit(tmp_path).read_text()


def test_the_readme_says_check_config_exits_1_for_a_disk_to_remount_or_mount() -> None:
    # The README's command table said "0 with warnings; 3 refused" alone: an admin scripting
    # check-config, or reading why the unit restarted, met an exit 1 it did not name.
    readme = (ROOT / "README.md").read_text()
    row = readme[readme.index("| `check-config` |") :].split("\n")[0]
    assert "0 with warnings; 3 refused; 1 where" in row and "remount it read-write" in row, row
    assert "a link to a disk not mounted yet" in row, row
